"""Dynamic admission: MutatingAdmissionWebhook and ValidatingAdmissionWebhook, which send
AdmissionReview v1 requests over HTTPS to the webhooks that admissionregistration.k8s.io/v1
configurations register (k8s.io/apiserver/pkg/admission/plugin/webhook).

- `matching`: which webhooks a write goes to (rules, namespace and object selectors);
- `client`: resolving `clientConfig` (URL or Service) and calling over verified TLS;
- `review`: AdmissionReview requests, answer checks, denials;
- `dispatcher`: one call with failurePolicy, warnings and audit annotations;
- `mutating` / `validating`: the two plug-ins.
"""
