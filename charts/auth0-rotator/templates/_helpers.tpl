{{/*
Chart name, or nameOverride; 63 characters at most (a label value).
*/}}
{{- define "auth0-rotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name
(when it already contains the chart name) or "<release>-<name>".
*/}}
{{- define "auth0-rotator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "auth0-rotator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "auth0-rotator.labels" -}}
helm.sh/chart: {{ include "auth0-rotator.chart" . }}
{{ include "auth0-rotator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: auth0-rotator
{{- end }}

{{/*
User-supplied labels (dict "context" $ "labels" $extra) minus any key the chart
sets itself: the chart's labels (the pod selector among them) always win.
*/}}
{{- define "auth0-rotator.extraLabels" -}}
{{- $chart := include "auth0-rotator.labels" .context | fromYaml }}
{{- range $key, $value := .labels }}
{{- if not (hasKey $chart $key) }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels that select the release's operator pods (immutable in the Deployment).
*/}}
{{- define "auth0-rotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth0-rotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount the operator runs as.
*/}}
{{- define "auth0-rotator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auth0-rotator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the leader-election Lease (in the release namespace).
*/}}
{{- define "auth0-rotator.leaseName" -}}
{{- default (include "auth0-rotator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "auth0-rotator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Combinations the schema cannot express; rendering fails with what to change.
Included by deployment.yaml, so every install and template checks them.
*/}}
{{- define "auth0-rotator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without the Lease every replica would rotate secrets" }}
{{- end }}
{{- with .Values.leaderElection }}
{{- if .enabled }}
{{- if le (float64 .leaseDurationSeconds) (float64 .renewDeadlineSeconds) }}
{{- fail "leaderElection.leaseDurationSeconds must be greater than leaderElection.renewDeadlineSeconds" }}
{{- end }}
{{- if le (float64 .renewDeadlineSeconds) (mulf 1.2 .retryPeriodSeconds) }}
{{- fail "leaderElection.renewDeadlineSeconds must be greater than 1.2 x leaderElection.retryPeriodSeconds" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.livenessProbe.port)) }}
{{- fail "metrics.port and livenessProbe.port must differ" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- end }}

{{/*
RBAC rules the operator needs in every namespace it serves (why each rule
exists: see the chart README).
*/}}
{{- define "auth0-rotator.namespacedRules" -}}
- apiGroups: [auth0rotator.dev]
  resources: [auth0clientsecrets, auth0tenants]
  verbs: [get, list, watch]
- apiGroups: [auth0rotator.dev]
  resources: [auth0clientsecrets/status, auth0tenants/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch, patch]
{{- end }}

{{/*
RBAC rules for cluster-scoped objects; always in a ClusterRole.
*/}}
{{- define "auth0-rotator.clusterRules" -}}
- apiGroups: [auth0rotator.dev]
  resources: [clusterauth0tenants]
  verbs: [get, list, watch]
- apiGroups: [auth0rotator.dev]
  resources: [clusterauth0tenants/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- end }}

{{/*
The binding subject: the operator's ServiceAccount.
*/}}
{{- define "auth0-rotator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "auth0-rotator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
The metrics Service's name (a DNS label: 63 characters with the suffix). The
Prometheus Operator names a ServiceMonitor's job after it, so the alert rules
select the operator's series by it.
*/}}
{{- define "auth0-rotator.metricsService" -}}
{{- include "auth0-rotator.fullname" . | trunc 55 | trimSuffix "-" }}-metrics
{{- end }}

{{/*
The PromQL label matchers of the operator's own series in the alert rules.
*/}}
{{- define "auth0-rotator.alertSelector" -}}
{{- .Values.prometheusRule.selector | default (printf "job=%q" (include "auth0-rotator.metricsService" .)) }}
{{- end }}

{{/*
One alert of the PrometheusRule: dict with ctx (the root context), alert (its
name), cfg (its values: enabled, severity, for), expr, summary, description.
The runbook is the section of docs/runbooks.md named after the alert.
*/}}
{{- define "auth0-rotator.alert" -}}
{{- if .cfg.enabled -}}
- alert: {{ .alert }}
  expr: |-
    {{- .expr | nindent 4 }}
  for: {{ .cfg.for }}
  labels:
    severity: {{ .cfg.severity }}
    {{- with .ctx.Values.prometheusRule.alertLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    summary: {{ .summary | quote }}
    description: {{ .description | quote }}
    runbook_url: {{ printf "%s#%s" .ctx.Values.prometheusRule.runbookBaseURL (lower .alert) | quote }}
{{- end }}
{{- end }}
