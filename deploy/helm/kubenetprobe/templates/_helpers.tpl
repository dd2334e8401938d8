{{/* The chart's name. */}}
{{- define "kubenetprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object. */}}
{{- define "kubenetprobe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "kubenetprobe.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "kubenetprobe.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubenetprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubenetprobe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubenetprobe.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels on every object: the plain manifests' two, plus Helm's. */}}
{{- define "kubenetprobe.labels" -}}
app.kubernetes.io/name: {{ include "kubenetprobe.name" . }}
app.kubernetes.io/part-of: kubenetprobe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The DaemonSet's selector (immutable once installed: keep it small). */}}
{{- define "kubenetprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubenetprobe.name" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* The agent's listen address, split (IPv4 or a name; [v6]:port too). */}}
{{- define "kubenetprobe.listenPort" -}}
{{- regexReplaceAll "^.*:([0-9]+)$" .Values.agent.listen "${1}" -}}
{{- end -}}
{{- define "kubenetprobe.listenHost" -}}
{{- $h := regexReplaceAll "^(.*):[0-9]+$" .Values.agent.listen "${1}" | trimPrefix "[" | trimSuffix "]" -}}
{{- if or (eq $h "0.0.0.0") (eq $h "::") (eq $h "") -}}127.0.0.1{{- else -}}{{ $h }}{{- end -}}
{{- end -}}
