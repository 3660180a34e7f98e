#!/usr/bin/env bash
# Runs an rfjax config on every worker of a Cloud TPU VM (a single host or a pod slice),
# and recovers from preemption: launch the same command again, or let --retries do it.
#
#   scripts/launch_tpu.sh --name rf-pod --zone us-central2-b --accelerator v4-32 \
#       --config configs/psi_correlation.py --bucket gs://my-bucket [--spot|--preemptible] \
#       [--workdir gs://my-bucket/other/dir] [--retries 3] [--project P] [--dry-run] \
#       [-- --config.num_seeds=4096]
#
# Steps: look the TPU VM up; create it if it is missing; delete and recreate it if it is
# PREEMPTED, TERMINATED, STOPPED or otherwise not READY and healthy (waiting first while it
# is CREATING, STARTING, RESTARTING or REPAIRING); copy this checkout to every worker and
# install it with JAX for TPU; run `rfjax --multihost` on all workers at once; copy the
# workdir back to runs/<name>/. With --retries N, a run that fails while the VM is no longer
# READY (preempted mid-run) starts over from the VM check, up to N times; the run resumes
# from the rows and checkpoints already in the workdir.
# The workdir defaults to <bucket>/rfjax/<name>/<config name>, the compilation cache to
# <bucket>/rfjax/jax_cache: in a bucket they outlive the VM. A local --workdir (relative,
# under ~/rfjax on worker 0) is lost with a preempted VM.
# --dry-run prints every command (each branch of the VM check) and runs none.
# Extra arguments after `--` go to rfjax.
set -euo pipefail

name="" zone="" accelerator="" project="" config="" workdir="" bucket="" dry_run=0
version="tpu-ubuntu2204-base" capacity="" retries=0
poll_seconds="${LAUNCH_TPU_POLL_SECONDS:-30}" max_polls="${LAUNCH_TPU_MAX_POLLS:-40}"
extra=()
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
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
    --bucket) bucket="${2:?}"; shift 2 ;;
    --spot) [[ -z "$capacity" || "$capacity" == spot ]] || die "--spot and --preemptible exclude each other"
            capacity=spot; shift ;;
    --preemptible) [[ -z "$capacity" || "$capacity" == preemptible ]] || die "--spot and --preemptible exclude each other"
                   capacity=preemptible; shift ;;
    --retries) retries="${2:?}"; shift 2 ;;
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
[[ -f "${config%%:*}" ]] || die "--config: no such file: ${config%%:*}"
[[ "$retries" =~ ^[0-9]+$ ]] || die "--retries must be a whole number, got $retries"
if [[ -n "$bucket" ]]; then
  [[ "$bucket" == gs://* ]] || die "--bucket must be a gs:// URI, got $bucket"
fi
if [[ -z "$workdir" ]]; then
  [[ -n "$bucket" ]] || die "--bucket (or --workdir) is required: the workdir defaults to <bucket>/rfjax/<name>/<config name> so that a relaunch resumes"
  cfg="$(basename "${config%%:*}" .py)"
  [[ "$config" == *:* ]] && cfg+="_${config##*:}"
  workdir="${bucket%/}/rfjax/$name/$cfg"
fi
[[ "$workdir" != /* ]] || die "--workdir must be a gs:// URI or relative (it lives under ~/rfjax on the workers)"
remote_workdir=0
[[ "$workdir" == gs://* ]] && remote_workdir=1
if (( ! remote_workdir )); then
  echo "# warning: the workdir $workdir is on worker 0's disk: a preempted VM loses it" >&2
fi

gcloud_tpu=(gcloud compute tpus tpu-vm)
common=(--zone="$zone")
[[ -n "$project" ]] && common+=(--project="$project")
create_flags=(--accelerator-type="$accelerator" --version="$version")
[[ -n "$capacity" ]] && create_flags+=(--"$capacity")

run() {
  if (( dry_run )); then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

# "STATE HEALTH" of the VM, or "MISSING" if describe fails.
vm_state() {
  local out
  if out="$("${gcloud_tpu[@]}" describe "$name" "${common[@]}" --format='value(state,health)' 2>/dev/null)"; then
    out="$(echo "$out" | tr '\t' ' ' | xargs)"
    echo "${out:-UNKNOWN}"
  else
    echo MISSING
  fi
}

healthy() { [[ -z "$1" || "$1" == HEALTHY || "$1" == HEALTH_UNSPECIFIED ]]; }

create_vm() { run "${gcloud_tpu[@]}" create "$name" "${common[@]}" "${create_flags[@]}"; }
delete_vm() { run "${gcloud_tpu[@]}" delete "$name" "${common[@]}" --quiet; }

# Makes sure a READY, healthy VM named $name exists.
ensure_vm() {
  if (( dry_run )); then
    echo "# look the TPU VM up"
    run "${gcloud_tpu[@]}" describe "$name" "${common[@]}" --format='value(state,health)'
    echo "# if it is missing: create it"
    create_vm
    echo "# if it is PREEMPTED, TERMINATED, STOPPED or unhealthy: delete it, then create it"
    delete_vm
    create_vm
    return
  fi
  local polls=0 state health
  while true; do
    read -r state health <<<"$(vm_state)"
    case "$state" in
      MISSING)
        echo "# $name is missing: creating it" >&2
        create_vm; return ;;
      READY)
        if healthy "${health:-}"; then
          echo "# $name is READY" >&2; return
        fi
        echo "# $name is READY but $health: deleting and recreating it" >&2
        delete_vm; create_vm; return ;;
      CREATING|STARTING|RESTARTING|REPAIRING)
        if (( polls >= max_polls )); then
          echo "# $name still $state after $polls checks: deleting and recreating it" >&2
          delete_vm; create_vm; return
        fi
        polls=$((polls + 1)); sleep "$poll_seconds" ;;
      *)   # PREEMPTED, TERMINATED, STOPPED, STOPPING, DELETING, UNKNOWN, ...
        echo "# $name is $state: deleting and recreating it" >&2
        if [[ "$state" != DELETING ]]; then delete_vm; fi
        create_vm; return ;;
    esac
  done
}

root="$(cd "$(dirname "$0")/.." && pwd)"
remote_cmd="cd ~/rfjax && ~/venv/bin/rfjax --multihost --config=$(printf '%q' "$config") --workdir=$(printf '%q' "$workdir")"
# The compilation cache outlives the VM too: beside the workdirs in the bucket (shared by
# every run from it: JAX's cache keys hold the program, the backend and the versions).
if [[ -n "$bucket" ]]; then
  remote_cmd+=" --compilation_cache_dir=$(printf '%q' "${bucket%/}/rfjax/jax_cache")"
elif (( remote_workdir )); then
  remote_cmd+=" --compilation_cache_dir=$(printf '%q' "${workdir%/}/jax_cache")"
fi
for arg in "${extra[@]}"; do remote_cmd+=" $(printf '%q' "$arg")"; done
tarball="${TMPDIR:-/tmp}/rfjax-src-$name.tgz"
install_cmd="mkdir -p ~/rfjax && tar -xzf /tmp/rfjax-src.tgz -C ~/rfjax && python3 -m venv ~/venv && ~/venv/bin/pip install -q -U pip && ~/venv/bin/pip install -q -e ~/rfjax'[cloud]' 'jax[tpu]'"

attempt=0
while true; do
  ensure_vm
  echo "# copy this checkout to every worker and install it"
  run tar --exclude=.git --exclude=.venv --exclude=runs -czf "$tarball" -C "$root" .
  run "${gcloud_tpu[@]}" scp "$tarball" "$name:/tmp/rfjax-src.tgz" --worker=all "${common[@]}"
  run "${gcloud_tpu[@]}" ssh "$name" --worker=all "${common[@]}" --command "$install_cmd"
  echo "# run on all workers at once; process 0 writes the workdir: $workdir"
  status=0
  run "${gcloud_tpu[@]}" ssh "$name" --worker=all "${common[@]}" --command "$remote_cmd" || status=$?
  (( status == 0 )) && break
  read -r state health <<<"$(vm_state)"
  if [[ "$state" == READY ]] && healthy "${health:-}"; then
    echo "launch_tpu.sh: the run failed on a READY VM (exit $status): not a preemption" >&2
    exit "$status"
  fi
  if (( attempt >= retries )); then
    echo "launch_tpu.sh: the VM is $state after the run failed; no retries left" \
         "(relaunch the same command to resume from $workdir)" >&2
    exit "$status"
  fi
  attempt=$((attempt + 1))
  echo "# the VM is $state: attempt $((attempt + 1)) of $((retries + 1)), resuming from $workdir" >&2
done
echo "# copy the results back"
run mkdir -p "$root/runs/$name"
if (( remote_workdir )); then
  run gcloud storage cp --recursive "$workdir" "$root/runs/$name/"
else
  run "${gcloud_tpu[@]}" scp --recurse "$name:~/rfjax/$workdir" "$root/runs/$name/" --worker=0 "${common[@]}"
fi
