"""Operations: the stream monitor's view of topics, lags and DLQs, and the /ops dashboard and its
API. Above the services, since it reads their tables for /metrics and /ops."""
