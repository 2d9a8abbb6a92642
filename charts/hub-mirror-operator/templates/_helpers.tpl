{{/* Chart name, release full name and labels (the usual Helm conventions). */}}
{{- define "hmo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hmo.fullname" -}}
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

{{- define "hmo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hmo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hmo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hmo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hub-mirror-operator
{{- end }}

{{- define "hmo.serviceAccountName" -}}
{{- default (include "hmo.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The operator's image; the Jobs' reporter container runs it too. */}}
{{- define "hmo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces where MirrorJobs are served, comma-separated (default: the release namespace). */}}
{{- define "hmo.watchNamespaces" -}}
{{- default (list .Release.Namespace) .Values.watchNamespaces | uniq | join "," }}
{{- end }}

{{/* Namespaces whose MirrorJobs may change the cluster (default: the release namespace). */}}
{{- define "hmo.applyNamespaces" -}}
{{- default (list .Release.Namespace) .Values.applyNamespaces | uniq | join "," }}
{{- end }}

{{/* The `job` label Prometheus gives the operator's metrics. */}}
{{- define "hmo.metricsJob" -}}
{{- default (include "hmo.fullname" .) .Values.prometheusRule.job }}
{{- end }}

{{/* Refuses value combinations that would render a broken installation. */}}
{{- define "hmo.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail "leaderElection.enabled=false needs replicaCount 1: replicas without leader election would all act" }}
{{- end }}
{{- $watch := splitList "," (include "hmo.watchNamespaces" .) }}
{{- range splitList "," (include "hmo.applyNamespaces" .) }}
{{- if not (has . $watch) }}
{{- fail (printf "applyNamespaces: %q is not in watchNamespaces (%s); MirrorJobs there would never be served" . (join ", " $watch)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A RoleBinding of the operator's ServiceAccount: (dict "ctx" $ "name" N "namespace" NS "kind" Role|ClusterRole). */}}
{{- define "hmo.roleBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "hmo.labels" .ctx | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ .kind | default "Role" }}
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "hmo.serviceAccountName" .ctx }}
    namespace: {{ .ctx.Release.Namespace }}
{{- end }}
