{{/* Names and labels, as `helm create` makes them. */}}
{{- define "kubecano.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubecano.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kubecano.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kubecano.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kubecano.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubecano.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubecano.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubecano.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kubecano.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubecano.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The environment variable that carries destination $i's secret parameter $param. */}}
{{- define "kubecano.secretEnvName" -}}
{{- printf "KUBECANO_DEST_%d_%s" (index . 0) (regexReplaceAll "[^A-Z0-9]" (upper (index . 1)) "_") }}
{{- end }}

{{/*
kubecano's config file, from the values that mirror it. Secrets never enter
it: a secret parameter becomes a ${VAR} placeholder that kubecano expands
from an environment variable read from the existing Secret.
*/}}
{{- define "kubecano.config" -}}
{{- $c := dict "clusterName" .Values.clusterName "stateDir" "/var/lib/kubecano" -}}
{{- $server := omit (deepCopy (default (dict) .Values.server)) "auth" "tls" -}}
{{- $_ := set $server "host" "0.0.0.0" -}}
{{- $_ := set $server "port" (int .Values.service.targetPort) -}}
{{- with .Values.server.auth }}
{{- if .bearerToken }}
{{- $_ := set $server "auth" (dict "bearerToken" "${KUBECANO_AUTH_BEARER_TOKEN}") -}}
{{- else if .basic }}
{{- $_ := set $server "auth" (dict "basic" (dict "username" .basic.username "password" "${KUBECANO_AUTH_PASSWORD}")) -}}
{{- end }}
{{- end }}
{{- if .Values.server.tls.secretName }}
{{- $_ := set $server "tls" (dict "certFile" "/etc/kubecano/tls/tls.crt" "keyFile" "/etc/kubecano/tls/tls.key") -}}
{{- end }}
{{- $_ := set $c "server" $server -}}
{{- range $key := list "delivery" "enrichment" "severityMap" "workflows" "routes" "defaultDestinations" -}}
{{- with index $.Values $key }}
{{- $_ := set $c $key . -}}
{{- end }}
{{- end }}
{{- $_ := set $c "watch" (omit (deepCopy .Values.watch) "enabled") -}}
{{- $destinations := list -}}
{{- range $i, $d := .Values.destinations }}
{{- $params := deepCopy (default (dict) $d.params) -}}
{{- range $param, $ref := (default (dict) $d.secretParams) }}
{{- $_ := set $params $param (printf "${%s}" (include "kubecano.secretEnvName" (list $i $param))) -}}
{{- end }}
{{- $destinations = append $destinations (dict "name" $d.name "type" $d.type "params" $params) -}}
{{- end }}
{{- if $destinations }}
{{- $_ := set $c "destinations" $destinations -}}
{{- end }}
{{- toYaml $c }}
{{- end }}
