{{/* The chart's name, or nameOverride; 63 characters at most (a DNS label). */}}
{{- define "costspan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resources' name: fullnameOverride, else the release name (with the chart's name when the
release's name does not hold it). */}}
{{- define "costspan.fullname" -}}
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

{{- define "costspan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "costspan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "costspan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "costspan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: collector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the tokens: the user's, or the chart's own. */}}
{{- define "costspan.secretName" -}}
{{- default (include "costspan.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* True when some token is asked for. */}}
{{- define "costspan.authEnabled" -}}
{{- if or .Values.auth.otlp.enabled .Values.auth.admin.enabled }}true{{ end }}
{{- end }}

{{/* costspan.yaml: the user's config, with the listeners on every interface of the pod at the chart's
ports, the token variables when tokens are asked for and the worker count laid over it. */}}
{{- define "costspan.config" -}}
{{- $otlp := dict
  "grpc" (dict "endpoint" (printf "0.0.0.0:%d" (int .Values.ports.otlpGrpc)))
  "http" (dict "endpoint" (printf "0.0.0.0:%d" (int .Values.ports.otlpHttp))) }}
{{- if .Values.auth.otlp.enabled }}
{{- $_ := set $otlp "bearer_token_env" "COSTSPAN_TOKEN" }}
{{- end }}
{{- $admin := dict "endpoint" (printf "0.0.0.0:%d" (int .Values.ports.admin)) }}
{{- if .Values.auth.admin.enabled }}
{{- $_ := set $admin "bearer_token_env" "COSTSPAN_ADMIN_TOKEN" }}
{{- end }}
{{- $chart := dict
  "receivers" (dict "otlp" $otlp)
  "admin" $admin
  "service" (dict "workers" (int .Values.workers)) }}
{{- mergeOverwrite (deepCopy .Values.config) $chart | toYaml }}
{{- end }}
