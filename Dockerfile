FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
COPY contract ./contract
COPY ruleset ./ruleset
RUN pip install --no-cache-dir .
# /metrics: PROMETHEUS_MULTIPROC_DIR in docker-compose.yml (a volume takes this ownership).
RUN useradd --create-home alerts && mkdir -p /data /metrics && chown alerts /data /metrics
USER alerts
ENV ALERTS_DATA_DIR=/data
EXPOSE 8000
CMD ["fhir-alerts", "serve", "--host", "0.0.0.0", "--port", "8000"]
