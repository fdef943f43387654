"""The cross-service read side: views that combine what scoring and routing know of a lead
(the backtest, the trace). Above the services, below the composition (`leadflow/`)."""
