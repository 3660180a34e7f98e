#!/usr/bin/env bash
# Runs an rfjax config on every worker of a Cloud TPU VM (a single host or a pod slice).
#
#   scripts/launch_tpu.sh --name rf-pod --zone us-central2-b --accelerator v4-32 \
#       --config configs/psi_correlation.py --workdir runs/psi [--project P] [--dry-run]
#
# Steps: create the TPU VM unless it exists; copy this checkout to every worker and
# install it with JAX for TPU; run `rfjax --multihost` on all workers at once (every
# host computes its shard of the seeds; process 0 writes the workdir on worker 0);
# copy the workdir back. --dry-run prints the commands instead of running them.
# Extra arguments after `--` go to rfjax (e.g. -- --config.num_seeds=4096).
set -euo pipefail

name="" zone="" accelerator="" project="" config="" workdir="" dry_run=0
version="tpu-ubuntu2204-base"
extra=()
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "launch_tpu.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="${2:?}"; shift 2 ;;
    --zone) zone="${2:?}"; shift 2 ;;
    --accelerator) accelerator="${2:?}"; shift 2 ;;
    --version) version="${2:?}"; shift 2 ;;
    --project) project="${2:?}"; shift 2 ;;
    --config) config="${2:?}"; shift 2 ;;
    --workdir) workdir="${2:?}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ -n "$name" ]] || die "--name is required"
[[ -n "$zone" ]] || die "--zone is required"
[[ -n "$accelerator" ]] || die "--accelerator is required (e.g. v4-8, v4-32, v5litepod-16)"
[[ -n "$config" ]] || die "--config is required (e.g. configs/paper.py)"
[[ -n "$workdir" ]] || die "--workdir is required"
[[ -f "${config%%:*}" ]] || die "--config: no such file: ${config%%:*}"
[[ "$workdir" != /* ]] || die "--workdir must be relative (it lives under ~/rfjax on the workers)"

gcloud_tpu=(gcloud compute tpus tpu-vm)
common=(--zone="$zone")
[[ -n "$project" ]] && common+=(--project="$project")

run() {
  if (( dry_run )); then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

root="$(cd "$(dirname "$0")/.." && pwd)"
remote_cmd="cd ~/rfjax && ~/venv/bin/rfjax --multihost --config=$(printf '%q' "$config") --workdir=$(printf '%q' "$workdir")"
for arg in "${extra[@]}"; do remote_cmd+=" $(printf '%q' "$arg")"; done

if (( dry_run )) || ! "${gcloud_tpu[@]}" describe "$name" "${common[@]}" >/dev/null 2>&1; then
  (( dry_run )) && echo "# create the TPU VM unless it exists"
  run "${gcloud_tpu[@]}" create "$name" "${common[@]}" --accelerator-type="$accelerator" \
      --version="$version"
fi
echo "# copy this checkout to every worker and install it"
run tar --exclude=.git --exclude=.venv --exclude=runs -czf /tmp/rfjax-src.tgz -C "$root" .
run "${gcloud_tpu[@]}" scp /tmp/rfjax-src.tgz "$name:/tmp/rfjax-src.tgz" --worker=all "${common[@]}"
run "${gcloud_tpu[@]}" ssh "$name" --worker=all "${common[@]}" --command \
    "mkdir -p ~/rfjax && tar -xzf /tmp/rfjax-src.tgz -C ~/rfjax && python3 -m venv ~/venv && ~/venv/bin/pip install -q -U pip && ~/venv/bin/pip install -q -e ~/rfjax 'jax[tpu]'"
echo "# run on all workers at once; process 0 (worker 0) writes the workdir"
run "${gcloud_tpu[@]}" ssh "$name" --worker=all "${common[@]}" --command "$remote_cmd"
echo "# copy the results back from worker 0"
run mkdir -p "$root/runs/$name"
run "${gcloud_tpu[@]}" scp --recurse "$name:~/rfjax/$workdir" "$root/runs/$name/" --worker=0 "${common[@]}"
