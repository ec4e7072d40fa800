"""Operations: Prometheus metrics and `trustlane doctor`."""
