package rest

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/validate/content"

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

// newBundle applies the create defaults to in, validates it and returns the
// bundle to store:
//   - source defaults to the handler's source;
//   - metadata.name (the bundle's name within its consumer) defaults to name;
//   - the id is ResourceID(source, consumer_name, metadata.name);
//   - name defaults to the id (as Maestro's bundles have it);
//   - metadata.namespace defaults to consumer_name when that is a valid
//     namespace; metadata.uid and resourceVersion are server-set.
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
	if in.Metadata.Namespace == "" && len(content.IsDNS1123Label(in.ConsumerName)) == 0 {
		in.Metadata.Namespace = in.ConsumerName
	}
	in.Metadata = in.Metadata.WithTimestamps(time.Time{}, nil) // server-set
	in.Metadata.UID, in.Metadata.ResourceVersion = "", ""
	if err := validate.Bundle(in, h.transport); err != nil {
		return store.Bundle{}, err
	}
	return store.Bundle{
		ID:           id,
		Name:         in.Name,
		ConsumerName: in.ConsumerName,
		Source:       in.Source,
		Meta:         in.Metadata,
		Spec:         in.Spec(),
	}, nil
}

// changedBundle checks a replacement of cur and returns the bundle to store.
// consumer_name, name, source and metadata.name identify the bundle and
// cannot change; empty means "unchanged".
func (h *Handler) changedBundle(cur *store.Bundle, in *api.ResourceBundle) (store.Bundle, error) {
	if cur.DeletedAt != nil {
		return store.Bundle{}, h.deletingConflict(cur, "cannot be changed")
	}
	var es validate.Errors
	keep := func(field string, got *string, want string) {
		if *got != "" && *got != want {
			es = append(es, &validate.FieldError{Field: field, Msg: fmt.Sprintf("cannot change (%q, not %q)", want, *got)})
		}
		*got = want
	}
	keep("consumer_name", &in.ConsumerName, cur.ConsumerName)
	keep("name", &in.Name, cur.Name)
	keep("source", &in.Source, cur.Source)
	keep("metadata.name", &in.Metadata.Name, cur.Meta.Name)
	if len(es) > 0 {
		return store.Bundle{}, es
	}
	if in.Metadata.Namespace == "" {
		in.Metadata.Namespace = cur.Meta.Namespace
	}
	in.Metadata = in.Metadata.WithTimestamps(time.Time{}, nil) // server-set
	in.Metadata.UID, in.Metadata.ResourceVersion = "", ""
	if err := validate.Bundle(in, h.transport); err != nil {
		return store.Bundle{}, err
	}
	return store.Bundle{
		ID:           cur.ID,
		Name:         cur.Name,
		ConsumerName: cur.ConsumerName,
		Source:       cur.Source,
		Meta:         in.Metadata,
		Spec:         in.Spec(),
	}, nil
}
