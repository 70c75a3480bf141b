package maestro

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
)

// ManifestBundle is the data of a spec event as sdk-go's source and agent
// codecs define it (payload.ManifestBundle).
type ManifestBundle struct {
	Manifests       []workv1.Manifest             `json:"manifests"`
	DeleteOption    *workv1.DeleteOption          `json:"deleteOption,omitempty"`
	ManifestConfigs []workv1.ManifestConfigOption `json:"manifestConfigs,omitempty"`
	Executer        *workv1.ManifestWorkExecutor  `json:"executer,omitempty"`
}

// ManifestBundleStatus is the data of a status event as sdk-go's codecs
// define it (payload.ManifestBundleStatus).
type ManifestBundleStatus struct {
	ManifestBundle *ManifestBundle            `json:"manifestBundle,omitempty"`
	Conditions     []metav1.Condition         `json:"conditions"`
	ResourceStatus []workv1.ManifestCondition `json:"resourceStatus,omitempty"`
}
