package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// TestBundleOverGRPC: a Maestro-style source client subscribes, creates a
// bundle with spec.create_request, and receives its status as
// status.update_request events; REST shows the same bundle applied.
func TestBundleOverGRPC(t *testing.T) {
	eachStore(t, func(t *testing.T, kind storeKind) {
		c := newCluster(t, kind)
		c.createConsumer("c1")
		c.startAgent("c1")
		ns := c.namespace("grpc")

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cc, err := ggrpc.NewClient(c.grpcAddr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		client := pb.NewCloudEventServiceClient(cc)
		stream, err := client.Subscribe(ctx, &pb.SubscriptionRequest{Source: "cs", DataType: cloudevents.DataType})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatalf("subscription header: %v", err)
		}

		manifest, _ := json.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "from-grpc", "namespace": ns},
			"data":     map[string]any{"v": "hello"},
		})
		id := uuid.NewString()
		ev, err := cloudevents.EncodeSpecRequest(cloudevents.SpecRequest{
			Action: cloudevents.ActionCreate, BundleID: id, Consumer: "c1", Source: "cs",
			Meta: api.ObjectMeta{Name: "grpc-bundle", Namespace: "c1"},
			Spec: api.BundleSpec{
				Manifests: []json.RawMessage{manifest},
				ManifestConfigs: []workv1.ManifestConfigOption{{
					ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: "from-grpc", Namespace: ns},
					FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
						JsonPaths: []workv1.JsonPath{{Name: "v", Path: ".data.v"}}}},
				}},
			},
		}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pev, err := grpc.ToPB(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Publish(ctx, &pb.PublishRequest{Event: pev}); err != nil {
			t.Fatalf("publish create: %v", err)
		}

		// The source stream delivers the bundle's status with the fed-back value.
		for {
			in, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for status on the source stream: %v", err)
			}
			e, err := grpc.FromPB(in)
			if err != nil || e.Type != cloudevents.TypeStatusUpdate {
				continue
			}
			st, err := cloudevents.DecodeSourceStatus(e)
			if err != nil {
				t.Fatalf("decode status: %v", err)
			}
			b := api.ResourceBundle{Status: &api.BundleStatus{ResourceStatus: st.Reported.ResourceStatus}}
			if v, _ := feedback(b, "v"); st.BundleID == id && v == "hello" {
				if st.SequenceID == "" {
					t.Errorf("status event without sequenceid")
				}
				break
			}
		}
		eventually(t, 10*time.Second, "REST shows the gRPC bundle applied", func() bool {
			b, _, err := c.getBundle(id)
			return err == nil && b.Source == "cs" && bundleCond(b, api.ConditionApplied) && c.converged(id, "hello")
		})
	})
}
