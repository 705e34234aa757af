# The Airflow side of the project (dags/ + plugins/) for the local stack in
# docker-compose.airflow.yml: the official Airflow image of the version Cloud Composer 3 runs
# (the pin in requirements.txt), plus the repository's pinned requirements.
#
# Also installs trainer/requirements.txt: with SF_PLATFORM=local the scheduler runs the trainer
# entrypoint as a subprocess, exactly as it does on a laptop. (Composer gets only
# requirements-composer.txt: on GCP the trainer runs in its own image.)
#
#   docker build -f docker/airflow.Dockerfile -t sales-forecast-airflow:3.3.1 .
ARG AIRFLOW_VERSION=3.3.1
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
COPY --chown=airflow:root requirements.txt /opt/sales-forecast/requirements.txt
COPY --chown=airflow:root trainer/requirements.txt /opt/sales-forecast/trainer-requirements.txt
# apache-airflow is pinned again on the command line so no requirement can move it.
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/sales-forecast/requirements.txt \
        -r /opt/sales-forecast/trainer-requirements.txt

# dags/, plugins/, sf_contract/, trainer/ and data/ are mounted by docker-compose.airflow.yml,
# not copied: edits show up without a rebuild. PYTHONPATH: sales_forecast from plugins/,
# sf_contract from /opt/airflow (the trainer subprocess runs from /opt/airflow, the
# repository root, which finds trainer and sf_contract alike).
ENV SF_PLATFORM=local \
    SF_DATA_ROOT=/opt/airflow/.local \
    PYTHONPATH=/opt/airflow/plugins:/opt/airflow
