{{/* Names, labels and the namespace lists the RBAC templates share. */}}

{{- define "reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: a DNS-1035 label, since the Service carries it (a release name's dots become dashes). */}}
{{- define "reconciler.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- else -}}
{{- $full = printf "%s-%s" .Release.Name $name -}}
{{- end -}}
{{- end -}}
{{- $full = $full | replace "." "-" | trunc 63 | trimSuffix "-" -}}
{{- if not (regexMatch "^[a-z]" $full) -}}
{{- fail (printf "the resources would be named %q, and a Service name must start with a letter: set fullnameOverride" $full) -}}
{{- end -}}
{{- $full -}}
{{- end -}}

{{- define "reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "reconciler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "reconciler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The namespaces of each kind of access, one per line, sorted and without repeats. */}}
{{- define "reconciler.stateNamespaces" -}}
{{- $all := list -}}
{{- range .Values.environments -}}
{{- $all = append $all (default $.Release.Namespace .stateNamespace) -}}
{{- end -}}
{{- $all | uniq | sortAlpha | join "\n" -}}
{{- end -}}

{{- define "reconciler.workloadNamespaces" -}}
{{- $all := list -}}
{{- range .Values.environments -}}
{{- $all = concat $all (default list .workloadNamespaces) -}}
{{- end -}}
{{- $all | uniq | sortAlpha | join "\n" -}}
{{- end -}}

{{- define "reconciler.secretNamespaces" -}}
{{- $all := list -}}
{{- range .Values.environments -}}
{{- $all = concat $all (default list .secretNamespaces) -}}
{{- end -}}
{{- $all | uniq | sortAlpha | join "\n" -}}
{{- end -}}

{{/* One RoleBinding of the controller's ServiceAccount to a Role of the same name in a namespace. */}}
{{- define "reconciler.roleBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "reconciler.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "reconciler.serviceAccountName" .root }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}


{{/* Seconds in a duration of the schema's form (a number and ms | s | m | h), for comparing two of them. */}}
{{- define "reconciler.seconds" -}}
{{- $unit := get (dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0) (regexFind "[a-z]+$" .) -}}
{{- mulf (regexFind "^[0-9]+" . | float64) $unit -}}
{{- end -}}
