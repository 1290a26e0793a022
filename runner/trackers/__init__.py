"""Where metrics go besides the run directory: Lightning's file loggers and the experiment
trackers (MLflow, W&B) that follow one run across its stages (`tracking`), and MLflow's local
store (`mlflow_store`)."""
