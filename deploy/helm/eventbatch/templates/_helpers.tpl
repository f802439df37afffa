{{/* The domain of the API groups eventbatch serves: volcano.sh or eventbatch.io. */}}
{{- define "eventbatch.domain" -}}
{{- if eq .Values.apiGroups "volcano" -}}
volcano.sh
{{- else if eq .Values.apiGroups "eventbatch" -}}
eventbatch.io
{{- else -}}
{{- fail (printf "apiGroups: %q is neither volcano nor eventbatch" .Values.apiGroups) -}}
{{- end -}}
{{- end -}}

{{- define "eventbatch.labels" -}}
app.kubernetes.io/name: eventbatch
{{- end -}}
