{{/* Names and labels. */}}
{{- define "jamuna.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jamuna.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jamuna.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "jamuna.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: (dict "ctx" $ "component" "gateway"). */}}
{{- define "jamuna.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jamuna.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "jamuna.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "jamuna.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jamuna.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Where the backing services are: the in-chart subchart when enabled, else the
external URL. An empty result means "not configured"; jamuna.validate fails
the render for the ones that are required.
*/}}
{{- define "jamuna.eventLogUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" .Release.Name -}}
{{- else -}}
{{- .Values.external.eventLog -}}
{{- end -}}
{{- end -}}

{{- define "jamuna.mongodbUrl" -}}
{{- if .Values.mongodb.enabled -}}
{{- printf "mongodb://%s-mongodb:27017" .Release.Name -}}
{{- else -}}
{{- .Values.external.mongodb -}}
{{- end -}}
{{- end -}}

{{- define "jamuna.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" .Release.Name -}}
{{- else -}}
{{- .Values.external.redis -}}
{{- end -}}
{{- end -}}

{{- define "jamuna.qdrantUrl" -}}
{{- if .Values.qdrant.enabled -}}
{{- printf "http://%s-qdrant:6334" .Release.Name -}}
{{- else -}}
{{- .Values.external.qdrant -}}
{{- end -}}
{{- end -}}

{{/*
The JWT signing secret from values: required, at least 32 characters, never
defaulted. (With secrets.existingSecret it is not read from values at all.)
*/}}
{{- define "jamuna.jwtSecret" -}}
{{- $jwt := required "secrets.jwtSecret is required: set it to at least 32 random characters (e.g. --set secrets.jwtSecret=\"$(openssl rand -base64 48)\"), or name a Secret holding JAMUNA_JWT_SECRET in secrets.existingSecret. It is never defaulted." .Values.secrets.jwtSecret -}}
{{- if lt (len $jwt) 32 -}}
{{- fail (printf "secrets.jwtSecret is %d characters long: use at least 32 random characters (e.g. openssl rand -base64 48)" (len $jwt)) -}}
{{- end -}}
{{- $jwt -}}
{{- end -}}

{{/*
Checks that fail the render with a message that says what to set. Included
by the ConfigMap, which every install renders.
*/}}
{{- define "jamuna.validate" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $_ := include "jamuna.jwtSecret" . -}}
{{- end -}}
{{- $log := include "jamuna.eventLogUrl" . -}}
{{- if not $log -}}
{{- fail "the event log is not configured: set external.eventLog to nats://HOST:4222, or nats.enabled=true to run NATS in the cluster" -}}
{{- end -}}
{{- if not (hasPrefix "nats://" $log) -}}
{{- fail (printf "external.eventLog must be a nats:// URL in the distributed mode (the SQLite log is for `jamuna serve`), not %q" $log) -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not (include "jamuna.mongodbUrl" .) -}}
{{- fail "MongoDB is not configured: set external.mongodb to mongodb://…, mongodb.enabled=true, or JAMUNA_MONGODB_URL in secrets.existingSecret" -}}
{{- end -}}
{{- if not (include "jamuna.redisUrl" .) -}}
{{- fail "Redis is not configured: set external.redis to redis://…, redis.enabled=true, or JAMUNA_REDIS_URL in secrets.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (lt (int .Values.gateway.autoscaling.minReplicas) 2) -}}
{{- fail "gateway.autoscaling.minReplicas must be at least 2: the PodDisruptionBudget and rolling updates need a second replica" -}}
{{- end -}}
{{- end -}}

{{/*
Pod annotations shared by the roles: a restart when the configuration
changes, and Prometheus scrape annotations: (dict "ctx" $ "port" PORT), the
port /metrics is served on (the gateway's metricsPort, the others' port).
*/}}
{{- define "jamuna.podAnnotations" -}}
{{- $port := .port -}}
{{- with .ctx -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
{{- end -}}

{{/*
The container every role runs: (dict "ctx" $ "role" "gateway" "args" (list "gateway") "values" .Values.gateway).
*/}}
{{- define "jamuna.container" -}}
{{- $ctx := .ctx -}}
- name: {{ .role }}
  image: {{ include "jamuna.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    {{- toYaml .args | nindent 4 }}
  ports:
    - name: http
      containerPort: {{ $ctx.Values.port }}
      protocol: TCP
    {{- if eq .role "gateway" }}
    - name: metrics
      containerPort: {{ $ctx.Values.metricsPort }}
      protocol: TCP
    {{- end }}
  envFrom:
    - configMapRef:
        name: {{ include "jamuna.fullname" $ctx }}
    - secretRef:
        name: {{ include "jamuna.fullname" $ctx }}
    {{- with $ctx.Values.secrets.existingSecret }}
    - secretRef:
        name: {{ . }}
    {{- end }}
  env:
    - name: OTEL_SERVICE_NAME
      value: {{ printf "jamuna-%s" .role | quote }}
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
  {{- with $ctx.Values.probes }}
  startupProbe:
    httpGet:
      path: {{ .startup.path }}
      port: http
    periodSeconds: {{ .startup.periodSeconds }}
    failureThreshold: {{ .startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: {{ .liveness.path }}
      port: http
    initialDelaySeconds: {{ .liveness.initialDelaySeconds }}
    periodSeconds: {{ .liveness.periodSeconds }}
    timeoutSeconds: {{ .liveness.timeoutSeconds }}
    failureThreshold: {{ .liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: {{ .readiness.path }}
      port: http
    initialDelaySeconds: {{ .readiness.initialDelaySeconds }}
    periodSeconds: {{ .readiness.periodSeconds }}
    timeoutSeconds: {{ .readiness.timeoutSeconds }}
    failureThreshold: {{ .readiness.failureThreshold }}
  {{- end }}
  {{- with .preStopSleepSeconds }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", {{ . | quote }}]
  {{- end }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: data
      mountPath: /var/lib/jamuna
    - name: tmp
      mountPath: /tmp
{{- end -}}

{{/* The pod-level parts every role shares: (dict "ctx" $ "values" .Values.gateway). */}}
{{- define "jamuna.podSpecCommon" -}}
{{- $ctx := .ctx -}}
serviceAccountName: {{ include "jamuna.serviceAccountName" $ctx }}
automountServiceAccountToken: false
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # Scratch space only: every durable state of the distributed roles is in
  # NATS, MongoDB and Redis.
  - name: data
    emptyDir: {}
  - name: tmp
    emptyDir:
      medium: Memory
      sizeLimit: 64Mi
{{- end -}}
