#!/usr/bin/env bash
# Train in resumable chunks: `histo-gan fit ARGS --name NAME --ckpt_path last` for at most
# CHUNK_MINUTES (default 20) at a time, again and again, until a chunk ends by the run's own
# budget (max_steps / max_epochs) instead of the chunk timer. Each chunk starts from the
# newest last.ckpt of NAME (a new run folder per chunk: runs/.../NAME/version_<N>), so a run
# killed mid-way (a session that ends) loses at most one chunk; start the same command again.
#   experiments/protocols/chunked_fit.sh NAME --config ... [more fit arguments]
# The summary of the last chunk goes to $HISTO_GAN_SUMMARY when that is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
histo_gan=${HISTO_GAN:-.venv/bin/histo-gan}
[ -x "$histo_gan" ] || histo_gan=histo-gan
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
name=${1:?usage: chunked_fit.sh NAME FIT_ARGS...}
shift
minutes=${CHUNK_MINUTES:-20}
final=${HISTO_GAN_SUMMARY:-}
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
chunk=1
while true; do
    echo "chunked_fit: $name chunk $chunk (at most $minutes min)"
    HISTO_GAN_SUMMARY=$summary "$histo_gan" fit "$@" --name "$name" --ckpt_path last \
        --max_chunk_minutes "$minutes"
    more=$("$python" -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["stopped_by_chunk_timer"]))' "$summary")
    if [ "$more" = 0 ]; then
        break
    fi
    chunk=$((chunk + 1))
done
if [ -n "$final" ]; then cp "$summary" "$final"; fi
echo "chunked_fit: $name done"
