{{/*
Names. The master key and age Secrets keep fixed names (mcpyard-master-key, mcpyard-age by
default) because the operator and the gateway look them up by name in their namespace: install
one mcpyard release per namespace.
*/}}
{{- define "mcpyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcpyard.fullname" -}}
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

{{/* <fullname>-<component>, kept within 63 characters. */}}
{{- define "mcpyard.componentName" -}}
{{- $full := include "mcpyard.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $full .component }}
{{- end }}

{{- define "mcpyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; call with (dict "root" $ "component" "gateway"). */}}
{{- define "mcpyard.labels" -}}
helm.sh/chart: {{ include "mcpyard.chart" .root }}
{{ include "mcpyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: mcpyard
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mcpyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* An image reference: repository:tag (tag defaults to the chart's appVersion), or @digest. */}}
{{- define "mcpyard.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "mcpyard.image" -}}
{{ include "mcpyard.imageRef" (dict "root" . "image" .Values.image) }}
{{- end }}

{{- define "mcpyard.runnerImage" -}}
{{ include "mcpyard.imageRef" (dict "root" . "image" .Values.runnerImage) }}
{{- end }}

{{- define "mcpyard.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "mcpyard.componentName" (dict "root" . "component" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcpyard.gatewayServiceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "mcpyard.componentName" (dict "root" . "component" "gateway")) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The URL the operator writes into Workspace status: set, or the ingress, or the Service. */}}
{{- define "mcpyard.gatewayUrl" -}}
{{- if .Values.operator.gatewayUrl }}
{{- .Values.operator.gatewayUrl | trimSuffix "/" }}
{{- else if and .Values.gateway.ingress.enabled .Values.gateway.ingress.hosts }}
{{- $host := (first .Values.gateway.ingress.hosts).host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.gateway.ingress.tls) 0)) $host }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "mcpyard.componentName" (dict "root" . "component" "gateway")) .Release.Namespace (int .Values.gateway.service.port) }}
{{- end }}
{{- end }}

{{/* True when more than one gateway replica may run. */}}
{{- define "mcpyard.gatewayMulti" -}}
{{- if or (gt (int .Values.gateway.replicas) 1) (and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.maxReplicas) 1)) }}true{{ end }}
{{- end }}

{{- define "mcpyard.redisConfigured" -}}
{{- if or .Values.gateway.redis.url .Values.gateway.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* Pod and container security contexts: Pod Security "restricted". */}}
{{- define "mcpyard.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "mcpyard.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end }}

{{/*
RBAC rules from files/rbac.yaml (generated from mcpyard.kube.RBAC_RULES), as PolicyRules.
Call with (dict "root" $ "component" "operator" "scope" "cluster" "clusterScoped" true):
the rules of that component and scope, keeping only the resources that are cluster-scoped
(clusterScoped true) or namespaced (false), since a Role cannot grant a cluster-scoped one.
*/}}
{{- define "mcpyard.rbacRules" -}}
{{- $clusterScoped := list "namespaces" "customresourcedefinitions" "clusterkopfpeerings" "nodes" "persistentvolumes" "clusterroles" "clusterrolebindings" "storageclasses" "priorityclasses" "ingressclasses" }}
{{- $all := .root.Files.Get "files/rbac.yaml" | fromYaml }}
{{- $out := list }}
{{- range $rule := index $all .component }}
{{- if eq $rule.scope $.scope }}
{{- $resources := list }}
{{- range $r := $rule.resources }}
{{- if eq (has (first (splitList "/" $r)) $clusterScoped) $.clusterScoped }}
{{- $resources = append $resources $r }}
{{- end }}
{{- end }}
{{- if $resources }}
{{- $policy := dict "apiGroups" $rule.apiGroups "resources" $resources "verbs" $rule.verbs }}
{{- with $rule.resourceNames }}{{ $_ := set $policy "resourceNames" . }}{{ end }}
{{- $out = append $out $policy }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
