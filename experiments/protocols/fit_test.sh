#!/usr/bin/env bash
# One protocol trial: train with ARGS, then `histo-gan test ARGS` on the fit's best checkpoint.
# The test run folder holds what `histo-gan report` reads (test_metrics.json,
# test_metrics_per_image.csv, config.yaml, split.json). Used as the program of the sweeps in
# experiments/sweeps/ (W&B passes the trial's parameters as --key=value arguments).
#   experiments/protocols/fit_test.sh --config ... [more arguments]
# With HISTO_GAN_TRIAL set (`histo-gan sweep` sets it to <sweep stem>_<trial id>, one name per
# trial, the same on every start), the fit runs through chunked_fit.sh under that run name, in
# resumable chunks of at most CHUNK_MINUTES (default 20): a trial killed mid-way resumes from
# its last.ckpt when it is started again. Its test runs under the name <HISTO_GAN_TRIAL>_test.
# Without HISTO_GAN_TRIAL, one `histo-gan fit ARGS` trains from scratch under the config's name.
# The summary in $HISTO_GAN_SUMMARY (when set) is the test's, plus fit_run_dir (the run folder
# of the fit's last chunk, with its summary_fit.json), fit_global_step and test_seconds (the
# test's wall time; the sweep subtracts it from the trial's to get the fit's).
set -euo pipefail
cd "$(dirname "$0")/../.."
histo_gan=${HISTO_GAN:-.venv/bin/histo-gan}
[ -x "$histo_gan" ] || histo_gan=histo-gan
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
final=${HISTO_GAN_SUMMARY:-}
fit_summary=$(mktemp)
test_summary=$(mktemp)
trap 'rm -f "$fit_summary" "$test_summary"' EXIT

test_name=()
if [ -n "${HISTO_GAN_TRIAL:-}" ]; then
    HISTO_GAN_SUMMARY=$fit_summary HISTO_GAN=$histo_gan PYTHON=$python \
        experiments/protocols/chunked_fit.sh "$HISTO_GAN_TRIAL" "$@"
    test_name=(--name "${HISTO_GAN_TRIAL}_test")
else
    HISTO_GAN_SUMMARY=$fit_summary "$histo_gan" fit "$@"
fi
# The fit's best checkpoint (its summary's, when that file exists), else last.ckpt of the fit.
# A trial's chunks are folders of one name: a chunk that improved nothing (or a rerun after the
# fit had finished, which trains no step and saves nothing) points at none, so the newest
# best.ckpt (else last.ckpt) of the name's folders is the trial's.
checkpoint=$("$python" - "$fit_summary" "${HISTO_GAN_TRIAL:+chunks}" <<'PY'
import json, pathlib, sys
summary, chunked = json.load(open(sys.argv[1])), sys.argv[2] == "chunks"
best, run = summary.get("best_model_path"), pathlib.Path(summary["run_dir"])
folders = sorted(run.parent.glob("version_*"), key=lambda p: int(p.name.split("_")[-1]))
candidates = [best] if best else []
for name in ("best.ckpt", "last.ckpt"):
    candidates += [f / "checkpoints" / name for f in reversed(folders if chunked else [run])]
found = next((str(c) for c in candidates if pathlib.Path(c).is_file()), None)
if found is None:
    sys.exit(f"fit_test.sh: no checkpoint of {run}")
print(found)
PY
)
started=$SECONDS
HISTO_GAN_SUMMARY=$test_summary "$histo_gan" test "$@" ${test_name[@]+"${test_name[@]}"} \
    --ckpt_path "$checkpoint"
if [ -n "$final" ]; then  # written whole, in one rename: a summary means a finished trial
    "$python" - "$test_summary" "$fit_summary" $((SECONDS - started)) "$final" <<'PY'
import json, os, sys
summary, fit = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
summary.update(fit_run_dir=fit["run_dir"], fit_global_step=fit["global_step"],
               test_seconds=int(sys.argv[3]))
with open(sys.argv[4] + ".tmp", "w") as handle:
    json.dump(summary, handle, indent=2)
os.replace(sys.argv[4] + ".tmp", sys.argv[4])
PY
fi
