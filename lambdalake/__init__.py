"""lambdalake: the Lambda and Kappa architectures on Kafka, Flink, Iceberg, Airflow and Trino."""

__version__ = "0.1.0"
