#!/usr/bin/env bash
# Force one rotation of an Auth0ClientSecret now and wait until it is done:
# the rotation closed (Ready=True) and, when the resource has restart targets,
# every target rolled out to the new secret (RolloutComplete=True for it).
#
#   examples/force-rotation.sh NAME [NAMESPACE]
#
# The annotation value only has to be new: each distinct value rotates once
# (status.lastRotateRequest records the handled one; re-applying it does
# nothing). spec.minInterval does not apply to forced rotations; spec.suspend
# and the tenant's minForcedRotationInterval do. TIMEOUT (default 120s) bounds
# the rotation, ROLLOUT_TIMEOUT (seconds, default 600) the rollout.
set -euo pipefail
name="${1:?usage: $0 NAME [NAMESPACE]}"
ns=(); [[ -n "${2:-}" ]] && ns=(--namespace "$2")
request="$(date +%s)"
a0cs() { kubectl get "${ns[@]}" auth0clientsecret "$name" -o jsonpath="$1"; }

kubectl annotate "${ns[@]}" auth0clientsecret "$name" \
  auth0rotator.dev/rotate="$request" --overwrite
# Handled when lastRotateRequest carries our value; done when Ready is True again.
kubectl wait "${ns[@]}" auth0clientsecret "$name" --timeout="${TIMEOUT:-120s}" \
  --for=jsonpath='{.status.lastRotateRequest}'="$request"
kubectl wait "${ns[@]}" auth0clientsecret "$name" --timeout="${TIMEOUT:-120s}" \
  --for=condition=Ready

# With restart targets: wait until RolloutComplete is True for this rotation's
# revision (right after the rotation it may still be True for the previous one).
revision="$(a0cs '{.status.restartRevision}')"
if [[ -n "$(a0cs '{.spec.restartTargets}')" && -n "$revision" ]]; then
  echo "waiting for the restart targets to run secret revision $revision"
  deadline=$((SECONDS + ${ROLLOUT_TIMEOUT:-600}))
  until a0cs '{range .status.conditions[?(@.type=="RolloutComplete")]}{.status} {.message}{end}' |
    grep -q "^True .*${revision}"; do
    if (( SECONDS >= deadline )); then
      echo "not rolled out after ${ROLLOUT_TIMEOUT:-600}s:" >&2
      a0cs '{range .status.conditions[?(@.type=="RolloutComplete")]}{.reason}: {.message}{end}' >&2
      echo >&2
      exit 1
    fi
    sleep 2
  done
  echo "RolloutComplete: every restart target runs secret revision $revision"
fi
kubectl get "${ns[@]}" auth0clientsecret "$name"
