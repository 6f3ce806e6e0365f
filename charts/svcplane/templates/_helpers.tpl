{{/* Chart name, for labels. */}}
{{- define "svcplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: RELEASE-svcplane, or RELEASE when it already says svcplane. */}}
{{- define "svcplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 36 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "svcplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "svcplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: svcplane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of a component's objects; call with (dict "root" $ "component" "webhook"). */}}
{{- define "svcplane.componentLabels" -}}
{{ include "svcplane.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of a component's pods; call with (dict "root" $ "component" "webhook"). */}}
{{- define "svcplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svcplane.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "svcplane.controllerManager.fullname" -}}
{{ include "svcplane.fullname" . }}-controller-manager
{{- end }}
{{- define "svcplane.webhook.fullname" -}}
{{ include "svcplane.fullname" . }}-webhook
{{- end }}
{{- define "svcplane.nodeAgent.fullname" -}}
{{ include "svcplane.fullname" . }}-node-agent
{{- end }}

{{/* ServiceAccount names. */}}
{{- define "svcplane.controllerManager.serviceAccountName" -}}
{{- default (include "svcplane.controllerManager.fullname" .) .Values.controllerManager.serviceAccount.name }}
{{- end }}
{{- define "svcplane.webhook.serviceAccountName" -}}
{{- default (include "svcplane.webhook.fullname" .) .Values.webhook.serviceAccount.name }}
{{- end }}
{{- define "svcplane.nodeAgent.serviceAccountName" -}}
{{- default (include "svcplane.nodeAgent.fullname" .) .Values.nodeAgent.serviceAccount.name }}
{{- end }}

{{/* An image reference from {repository, tag, digest}; call with (dict "root" $ "image" IMAGE). */}}
{{- define "svcplane.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ default .root.Chart.AppVersion .image.tag }}
{{- end -}}
{{- end }}

{{/* HOST:PORT for a bind flag, bracketing IPv6 hosts; call with (list HOST PORT). */}}
{{- define "svcplane.hostPort" -}}
{{- $host := index . 0 -}}
{{- if contains ":" $host -}}
[{{ $host }}]:{{ index . 1 }}
{{- else -}}
{{ $host }}:{{ index . 1 }}
{{- end -}}
{{- end }}

{{/*
The controllers the controller manager runs, as a JSON list: controllerManager.controllers, or
the mode's default when empty (replace: all three; sideBySide: endpointslice only).
*/}}
{{- define "svcplane.controllers" -}}
{{- $list := .Values.controllerManager.controllers -}}
{{- if not $list -}}
{{- if eq .Values.mode "sideBySide" -}}
{{- $list = list "endpointslice" "lbipam" -}}
{{- else -}}
{{- $list = list "endpointslice" "endpointslicemirroring" "endpoint" "lbipam" -}}
{{- end -}}
{{- end -}}
{{- toJson $list -}}
{{- end }}

{{/* The managed-by value of svcplane's EndpointSlices: controllerManager.managedBy, or the mode's. */}}
{{- define "svcplane.managedBy" -}}
{{- if .Values.controllerManager.managedBy -}}
{{ .Values.controllerManager.managedBy }}
{{- else if eq .Values.mode "sideBySide" -}}
endpointslice-controller.svcplane.dev
{{- else -}}
endpointslice-controller.k8s.io
{{- end -}}
{{- end }}

{{/* Soft or hard anti-affinity of a component's replicas over nodes; call with (dict "root" $ "component" C "preset" P). */}}
{{- define "svcplane.antiAffinity" -}}
{{- if eq .preset "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "svcplane.selectorLabels" . | nindent 12 }}
{{- else if eq .preset "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "svcplane.selectorLabels" . | nindent 10 }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the webhook's serving certificate. */}}
{{- define "svcplane.webhook.tlsSecretName" -}}
{{- if eq .Values.webhook.tls.source "secret" -}}
{{ .Values.webhook.tls.secret.name }}
{{- else -}}
{{ include "svcplane.webhook.fullname" . }}-tls
{{- end -}}
{{- end }}

{{/*
Combinations of values the schema cannot express; each failure names the field to change.
Included by validate.yaml, and first by every template that could fail on its own.
*/}}
{{- define "svcplane.validate" -}}
{{- $v := .Values -}}
{{- $cm := $v.controllerManager -}}
{{- $controllers := include "svcplane.controllers" . | fromJsonArray -}}
{{- $managedBy := include "svcplane.managedBy" . -}}
{{- if or (eq $managedBy "controller") (eq $managedBy "endpointslicemirroring-controller.k8s.io") -}}
{{- fail (printf "controllerManager.managedBy: %q is reserved (\"controller\", and the mirroring controller's value)" $managedBy) -}}
{{- end -}}
{{- if eq $v.mode "sideBySide" -}}
{{- if eq $managedBy "endpointslice-controller.k8s.io" -}}
{{- fail "controllerManager.managedBy: mode sideBySide needs a value other than kube-controller-manager's endpointslice-controller.k8s.io (empty means endpointslice-controller.svcplane.dev)" -}}
{{- end -}}
{{- range $controllers -}}
{{- if not (has . (list "endpointslice" "lbipam")) -}}
{{- fail (printf "controllerManager.controllers: %q cannot run in mode sideBySide: it would write the same objects as kube-controller-manager's; only endpointslice (under its own managed-by value) and lbipam can" .) -}}
{{- end -}}
{{- end -}}
{{- if and $v.nodeAgent.enabled (ne $v.nodeAgent.backend "dry-run") -}}
{{- fail "nodeAgent.enabled: mode sideBySide keeps kube-proxy, and two dataplanes cannot program one node; set nodeAgent.enabled=false, or nodeAgent.backend=dry-run" -}}
{{- end -}}
{{- if and $v.nodeAgent.enabled (or (eq (int $v.nodeAgent.healthzPort) 10256) (eq (int $v.nodeAgent.metricsPort) 10249)) -}}
{{- fail "nodeAgent.healthzPort/nodeAgent.metricsPort: in mode sideBySide kube-proxy holds 10256 and 10249 on every node; choose other ports for the dry-run agent" -}}
{{- end -}}
{{- end -}}
{{- if and $cm.enabled (gt (int $cm.replicas) 1) (not $cm.leaderElection.enabled) -}}
{{- fail "controllerManager.leaderElection.enabled: must be true with more than one replica (controllerManager.replicas), or two instances would write the same objects" -}}
{{- end -}}
{{- if and $v.webhook.enabled (eq $v.webhook.tls.source "secret") (not $v.webhook.tls.secret.name) -}}
{{- fail "webhook.tls.secret.name: required with webhook.tls.source=secret (a kubernetes.io/tls Secret in the release namespace)" -}}
{{- end -}}
{{- if and $v.webhook.enabled (eq $v.webhook.tls.source "certManager") $v.webhook.tls.certManager.issuerRef (not $v.webhook.tls.certManager.issuerRef.name) -}}
{{- fail "webhook.tls.certManager.issuerRef.name: required when issuerRef is set" -}}
{{- end -}}
{{- if and (not $v.controllerManager.serviceAccount.create) $cm.enabled (not $cm.serviceAccount.name) -}}
{{- fail "controllerManager.serviceAccount.name: required when controllerManager.serviceAccount.create is false" -}}
{{- end -}}
{{- if and (not $v.nodeAgent.serviceAccount.create) $v.nodeAgent.enabled (not $v.nodeAgent.serviceAccount.name) -}}
{{- fail "nodeAgent.serviceAccount.name: required when nodeAgent.serviceAccount.create is false" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled: needs metrics.service.enabled (the ServiceMonitor scrapes the metrics Services)" -}}
{{- end -}}
{{- end }}
