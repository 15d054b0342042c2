#!/usr/bin/env bash
# System packages the test suite drives for real: Slurm (slurmctld, slurmd, client), munge, a
# PostgreSQL server and headless Chromium (the report's browser test). Called by .ci/run before `make test`. Idempotent: does nothing (in well
# under a second) when everything is installed already. Debian 12 / Ubuntu package names.
set -euo pipefail

PACKAGES=(munge slurmctld slurmd slurm-client postgresql procps chromium)
# a program each package provides, to tell quickly whether it is there
PROBES=(munged slurmctld slurmd sbatch "postgresql:/usr/lib/postgresql/*/bin/pg_ctl" ps chromium)

missing=()
for i in "${!PACKAGES[@]}"; do
  probe=${PROBES[$i]}
  if [[ $probe == *:* ]]; then
    pattern=${probe#*:}
    # shellcheck disable=SC2086
    compgen -G "$pattern" > /dev/null || missing+=("${PACKAGES[$i]}")
  else
    PATH="$PATH:/usr/sbin:/sbin" command -v "$probe" > /dev/null || missing+=("${PACKAGES[$i]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-system-packages: all present (${PACKAGES[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo > /dev/null; then SUDO="sudo"; else
    echo "ci-system-packages: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get > /dev/null; then
  echo "ci-system-packages: no apt-get here; install by hand: ${missing[*]}" >&2
  exit 1
fi

echo "ci-system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# no systemd in CI containers: the package scripts cannot start daemons, which is what we want
# (the test fixtures start their own, on private ports and directories)
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
echo "ci-system-packages: done"
