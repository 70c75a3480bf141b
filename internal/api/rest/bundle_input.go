package rest

import (
	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// workGroupResource is the group-resource sdk-go source clients put in the
// resource ids they derive.
const workGroupResource = "manifestworks.work.open-cluster-management.io"

// ResourceID is the id of the bundle that source names metadata.name within
// a consumer: the UUIDv5 sdk-go source clients derive, so a bundle created
// over REST has the id a gRPC source client of the same source would give
// it, and creating it again after its removal reuses the id.
func ResourceID(source, consumer, workName string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID,
		[]byte(source+"-"+workGroupResource+"-"+consumer+"-"+workName)).String()
}

// newBundle applies the REST create defaults to in and returns the bundle
// to store (validated by the writer):
//   - source defaults to the handler's source;
//   - metadata.name (the bundle's name within its consumer) defaults to name;
//   - the id is ResourceID(source, consumer_name, metadata.name);
//   - name defaults to the id (as Maestro's bundles have it).
func (h *Handler) newBundle(in *api.ResourceBundle) (store.Bundle, error) {
	if in.Source == "" {
		in.Source = h.source
	}
	if in.Metadata.Name == "" {
		in.Metadata.Name = in.Name
	}
	if in.Metadata.Name == "" {
		return store.Bundle{}, validate.Errors{{Field: "metadata.name",
			Msg: "is required (or name): it names the bundle within its consumer"}}
	}
	id := ResourceID(in.Source, in.ConsumerName, in.Metadata.Name)
	if in.Name == "" {
		in.Name = id
	}
	return toStore(id, in), nil
}

// toStore is the bundle to store from a REST body.
func toStore(id string, in *api.ResourceBundle) store.Bundle {
	return store.Bundle{
		ID:           id,
		Name:         in.Name,
		ConsumerName: in.ConsumerName,
		Source:       in.Source,
		Meta:         in.Metadata,
		Spec:         in.Spec(),
	}
}
