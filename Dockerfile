# The pipeline's image: `kpi-pipeline worker` by default, `kpi-pipeline simulate` for the simulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY streams ./streams
COPY kpi_state ./kpi_state
COPY agents ./agents
COPY exporters ./exporters
COPY schemas ./schemas
RUN pip install . \
    && useradd --system --home-dir /var/lib/kpi-pipeline --create-home kpi

USER kpi
ENV KPI_DATA_DIR=/var/lib/kpi-pipeline KPI_WEB_HOST=0.0.0.0 KPI_WEB_PORT=6066
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=3)"]
CMD ["kpi-pipeline", "worker"]
