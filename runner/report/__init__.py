"""What a run shows a reader: its curves (plots/metrics.png) and one self-contained page
(report.html: config, metrics, curves, statistics plots, diagnosis, verification, resume
command). The sweep's page (runner.sweep.report) is built from the same parts."""
