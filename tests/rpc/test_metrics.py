from kamrouter.rpc.metrics import render
from kamrouter.stats import StatsRegistry


def test_prometheus_exposition():
    stats = StatsRegistry()
    stats.counter("tmx", "2xx_transactions").value = 5
    stats.gauge("dispatcher", "active-targets", lambda: 2.5)
    assert render(stats) == (
        "# HELP kamrouter_tmx_2xx_transactions_total kamrouter statistic tmx:2xx_transactions\n"
        "# TYPE kamrouter_tmx_2xx_transactions_total counter\n"
        "kamrouter_tmx_2xx_transactions_total 5\n"
        "# HELP kamrouter_dispatcher_active_targets kamrouter statistic dispatcher:active-targets\n"
        "# TYPE kamrouter_dispatcher_active_targets gauge\n"
        "kamrouter_dispatcher_active_targets 2.5\n"
    )
