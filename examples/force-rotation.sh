#!/usr/bin/env bash
# Force one rotation of an Auth0ClientSecret now and wait until it is done.
#
#   examples/force-rotation.sh NAME [NAMESPACE]
#
# The annotation value only has to be new: each distinct value rotates once
# (status.lastRotateRequest records the handled one; re-applying it does
# nothing). minInterval does not apply to forced rotations; suspend does.
set -euo pipefail
name="${1:?usage: $0 NAME [NAMESPACE]}"
ns=(); [[ -n "${2:-}" ]] && ns=(--namespace "$2")
request="$(date +%s)"

kubectl annotate "${ns[@]}" auth0clientsecret "$name" \
  auth0rotator.dev/rotate="$request" --overwrite
# Handled when lastRotateRequest carries our value; done when Ready is True again.
kubectl wait "${ns[@]}" auth0clientsecret "$name" --timeout="${TIMEOUT:-120s}" \
  --for=jsonpath='{.status.lastRotateRequest}'="$request"
kubectl wait "${ns[@]}" auth0clientsecret "$name" --timeout="${TIMEOUT:-120s}" \
  --for=condition=Ready
kubectl get "${ns[@]}" auth0clientsecret "$name"
