# RemoteBank: one image for every process (web, router, workers); the command picks the role.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=false
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext libgl1 nodejs npm fonts-noto-cjk espeak-ng \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home remotebank
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN pip install --no-cache-dir --no-deps rapidocr-onnxruntime==1.4.4
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY sdk/js/package.json sdk/js/package-lock.json sdk/js/
RUN cd sdk/js && npm ci --no-audit --no-fund --ignore-scripts
COPY . .
# The H5 SDK the customer page runs on (collected below as /static/sdk/).
RUN cd sdk/js && npm run build
# (DEBUG=true generates throwaway secrets into var/secrets for these two commands: removed, so
# the image carries no key and every deployment sets its own.)
RUN DEBUG=true python manage.py compilemessages --ignore=.venv \
    && DEBUG=true python manage.py collectstatic --noinput \
    && rm -rf var/secrets
USER remotebank
EXPOSE 8000
# Web: python -m remotebank.serve (Daphne with our limits). Others: `python manage.py run_router`, `python manage.py run_webhooks`, and per queue
# `python manage.py rqworker QUEUE --worker-class CLASS` with the class of remotebank.queues.WORKER_CLASSES
# (media: media_worker.worker.MediaWorker; webhooks: remotebank.workers.LowPrioritySimpleWorker;
# compose, qc, banking, downloads: remotebank.workers.LowPriorityWorker).
CMD ["python", "-m", "remotebank.serve", "-b", "0.0.0.0", "-p", "8000"]
