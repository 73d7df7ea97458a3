{{/* controller.yaml (the contract's format) from the values: environments (name, mode), drift, slack. */}}
{{- define "reconciler.controllerYaml" -}}
{{- $environments := list -}}
{{- $seen := dict -}}
{{- range required "environments: give at least one environment the controller owns" .Values.environments -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "environments: %s is listed twice (each environment once, in apply order)" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- $environments = append $environments (dict "name" .name "mode" (default "apply" .mode)) -}}
{{- end -}}
{{- if not $environments -}}
{{- fail "environments: give at least one environment the controller owns" -}}
{{- end -}}
{{- $config := dict "environments" $environments "drift" (dict "default" .Values.drift.default "rules" .Values.drift.rules) -}}
{{- if .Values.slack.enabled -}}
{{- $slack := dict "notifyApplied" .Values.slack.notifyApplied "maxMessagesPerCycle" .Values.slack.maxMessagesPerCycle -}}
{{- if .Values.slack.channel -}}
{{- $_ := set $slack "channel" .Values.slack.channel -}}
{{- end -}}
{{- $_ := set $config "slack" $slack -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
