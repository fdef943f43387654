"""Operations: stream health, metrics, the dead-letter queues and the live dashboard."""
