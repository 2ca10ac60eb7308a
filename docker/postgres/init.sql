-- Airflow's metadata database, beside the catalog's
CREATE DATABASE airflow;
