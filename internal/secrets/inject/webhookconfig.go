package inject

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// DefaultPath is the URL path Server serves the webhook on.
const DefaultPath = "/mutate-pods"

// WebhookName is the name of the one webhook in the configuration.
const WebhookName = "pods.inject.ferry.dev"

// timeoutSeconds bounds each call of the webhook; the handler's own namespace lookup is
// bounded by less.
const timeoutSeconds = 10

// WebhookConfiguration returns the MutatingWebhookConfiguration name that sends Pod creations
// to the Service serviceNS/serviceName, port 443, at path. It fails closed (a Pod that may
// need its secrets is not created without them), and spares the Pods of serviceNS (Ferry's
// own, so Ferry can start while the webhook is down), of kube-system, and of namespaces
// labeled vault.ferry.dev/inject=disabled. Its caBundle is empty: CertManager fills it in.
func WebhookConfiguration(name, serviceNS, serviceName, path string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return webhookConfiguration(name, serviceNS, admissionregistrationv1.WebhookClientConfig{
		Service: &admissionregistrationv1.ServiceReference{
			Namespace: serviceNS,
			Name:      serviceName,
			Path:      ptr.To(path),
			Port:      ptr.To[int32](443),
		},
	})
}

// WebhookConfigurationURL is WebhookConfiguration for a webhook at url, such as
// https://127.0.0.1:PORT/mutate-pods for tests, sparing the Pods of excludeNS.
func WebhookConfigurationURL(name, url, excludeNS string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return webhookConfiguration(name, excludeNS, admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url)})
}

func webhookConfiguration(name, excludeNS string, client admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
			Kind:       "MutatingWebhookConfiguration",
		},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "ferry"},
		},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            client,
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			TimeoutSeconds:          ptr.To[int32](timeoutSeconds),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{""},
					APIVersions: []string{"v1"},
					Resources:   []string{"pods"},
					Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{
					{
						Key:      corev1.LabelMetadataName,
						Operator: metav1.LabelSelectorOpNotIn,
						Values:   []string{excludeNS, metav1.NamespaceSystem},
					},
					{
						Key:      LabelInject,
						Operator: metav1.LabelSelectorOpNotIn,
						Values:   []string{InjectDisabled},
					},
				},
			},
		}},
	}
}
