# alexnet_tf: train, evaluate and watch AlexNet in one image. docs/DOCKER.md has the commands.
#
# GPU (default): TensorFlow as TF documents for pip, `tensorflow[and-cuda]`, with CUDA and
# cuDNN as wheels, on a slim Python base; run with `docker run --gpus all ...`. (Not
# tensorflow/tensorflow:*-gpu: since 2.18 those ship a cuDNN older than TF needs, and TF
# then sees no GPU and trains on the CPU.) It refuses to start without a GPU.
#   docker build -t alexnet-tf .
# CPU: plain TensorFlow, on any base with python3 (3.11+) and venv.
#   docker build --build-arg FLAVOUR=cpu -t alexnet-tf:cpu .
#   docker build --build-arg FLAVOUR=cpu --build-arg BASE_IMAGE=tensorflow/tensorflow:2.21.0 -t alexnet-tf:cpu .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG FLAVOUR=gpu

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTEST_ADDOPTS="-p no:cacheprovider" \
    HOME=/home/alexnet \
    ALEXNET_TF_FLAVOUR=${FLAVOUR} \
    CUDA_CACHE_PATH=/cache/cuda \
    CUDA_CACHE_MAXSIZE=4294967296

# Dependencies first, from requirements.txt and constraints.txt alone (the latter pins every
# package the former pulls in, so the image gets the versions a host install gets), so that
# a code change or another APP_UID reuses this layer.
# --system-site-packages: a TensorFlow already in the base (with its CUDA libraries) satisfies
# the pin instead of being downloaded again; a bare Python base gets everything from PyPI.
# A throwaway HOME for this step: the import check creates ~/.keras, which would otherwise
# stay in the image owned by root, and the container's user could not write to it.
COPY requirements.txt constraints.txt constraints-cuda.txt /opt/alexnet_tf/
RUN build_home=$(mktemp -d) \
    && export HOME="$build_home" \
    && case "$FLAVOUR" in \
        gpu) tensorflow="tensorflow[and-cuda]==2.21.0" cuda_pins=/opt/alexnet_tf/constraints-cuda.txt ;; \
        cpu) tensorflow="tensorflow==2.21.0" cuda_pins=/dev/null ;; \
        *) echo "FLAVOUR=$FLAVOUR is not gpu or cpu" >&2; exit 1 ;; \
    esac \
    && python3 -m venv --system-site-packages "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r /opt/alexnet_tf/requirements.txt "$tensorflow" \
        -c /opt/alexnet_tf/constraints.txt -c "$cuda_pins" \
    && python -c "import tensorflow as tf, keras; print('TensorFlow', tf.__version__, 'Keras', keras.__version__)" \
    && rm -rf "$build_home"

# The user the container runs as; match your own uid (`--build-arg APP_UID=$(id -u)`) for
# bind mounts, or run with `--user "$(id -u):$(id -g)"` (HOME is writable for any uid).
# Declared after the dependencies: a RUN below an ARG is rebuilt when the ARG changes.
ARG APP_UID=1000

# A non-root user. HOME is world-writable (sticky, like /tmp) because Keras, TFDS and
# TensorFlow keep caches under it and `--user` may give any uid. /data and /runs are the
# mount points (data in, checkpoints and TensorBoard logs out); /app/data and /app/runs point
# at them so relative defaults land in the mounts too.
RUN useradd --uid "$APP_UID" --non-unique --user-group --no-create-home --home-dir "$HOME" \
        --shell /bin/bash alexnet \
    && mkdir -p "$HOME" /data /runs /app /cache/cuda \
    && chown alexnet:alexnet "$HOME" /data /runs /cache /cache/cuda \
    && chmod 1777 "$HOME" /data /runs /cache /cache/cuda \
    && ln -s /data /app/data \
    && ln -s /runs /app/runs

WORKDIR /app
# Code last; .dockerignore keeps runs, data and caches out.
COPY . /app

USER ${APP_UID}
# TensorBoard: docker run -p 6006:6006 IMAGE tensorboard --logdir /runs --bind_all
EXPOSE 6006
# A batch job: `docker run IMAGE python train.py ...`, `... python evaluate.py ...`,
# `... python -m pytest`. With no command it prints train.py's usage.
CMD ["python", "train.py", "--help"]
