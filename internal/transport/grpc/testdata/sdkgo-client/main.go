// Command sdkgo-client drives open-cluster-management.io/sdk-go's source
// work client (the library Maestro's clients use) against a baton source
// endpoint at $ADDR (default 127.0.0.1:8090): create a ManifestWork in
// namespace (consumer) c1, wait for its status, patch it, wait for the new
// status, delete it and wait until the client has dropped it. HOLD=1 then
// idles 45 s and creates again, to check heartbeats and keepalives keep the
// stream.
//
// It lives in testdata because sdk-go is not a dependency of baton. Run it
// from a scratch module:
//
//	mkdir /tmp/sdkgo && cp main.go /tmp/sdkgo && cd /tmp/sdkgo
//	go mod init sdkgo && go get open-cluster-management.io/sdk-go@v1.3.0 && go mod tidy
//	ADDR=127.0.0.1:8090 go run .
//
// The server needs consumer c1 and an agent for it (or anything else that
// reports a status for every spec generation).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	workinformers "open-cluster-management.io/api/client/work/informers/externalversions"
	workv1 "open-cluster-management.io/api/work/v1"

	clientoptions "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/options"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	workstore "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/store"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc"
)

func addr() string {
	if a := os.Getenv("ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:8090"
}

func must(err error) {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := &grpc.GRPCOptions{Dialer: &grpc.GRPCDialer{URL: addr(),
		KeepAliveOptions: grpc.KeepAliveOptions{Enable: true, Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}}}
	watcherStore := workstore.NewSourceInformerWatcherStore(ctx)
	opt := clientoptions.NewGenericClientOptions(opts, codec.NewManifestBundleCodec(), "compat-client").
		WithClientWatcherStore(watcherStore).WithSourceID("compat")
	holder, err := work.NewSourceClientHolder(ctx, opt)
	must(err)
	factory := workinformers.NewSharedInformerFactoryWithOptions(holder.WorkInterface(), 5*time.Minute)
	informer := factory.Work().V1().ManifestWorks()
	watcherStore.SetInformer(informer.Informer())
	go informer.Informer().Run(ctx.Done())

	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x", "namespace": "default"}}
	raw, _ := json.Marshal(cm)
	w := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Name: "w1", Namespace: "c1"},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}}}}
	time.Sleep(time.Second)
	created, err := holder.ManifestWorks("c1").Create(ctx, w, metav1.CreateOptions{})
	must(err)
	fmt.Println("created uid", created.UID)
	seq := ""
	waitStatus := func(what string) {
		for i := 0; i < 300; i++ {
			got, err := holder.ManifestWorks("c1").Get(ctx, "w1", metav1.GetOptions{})
			s := ""
			if err == nil {
				s = got.Annotations["cloudevents.open-cluster-management.io/sequenceid"]
			}
			if err == nil && len(got.Status.Conditions) > 0 && s != seq {
				seq = s
				fmt.Println("status after", what, "sequence", s, "conditions", got.Status.Conditions)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		must(fmt.Errorf("no status after %s", what))
	}
	waitStatus("create")
	patch := []byte(`{"metadata":{"labels":{"a":"b"}}}`)
	_, err = holder.ManifestWorks("c1").Patch(ctx, "w1", types.MergePatchType, patch, metav1.PatchOptions{})
	must(err)
	waitStatus("patch")
	_, err = holder.ManifestWorks("c1").Create(ctx, &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Name: "w1", Namespace: "c1"}}, metav1.CreateOptions{})
	fmt.Println("duplicate create error:", err)
	must(holder.ManifestWorks("c1").Delete(ctx, "w1", metav1.DeleteOptions{}))
	for i := 0; i < 100; i++ {
		_, err := holder.ManifestWorks("c1").Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			fmt.Println("deleted:", err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if os.Getenv("HOLD") != "" {
		fmt.Println("holding for heartbeat/keepalive check")
		time.Sleep(45 * time.Second)
		_, err := holder.ManifestWorks("c1").Create(ctx, w, metav1.CreateOptions{})
		must(err)
		fmt.Println("create after 45s ok")
		waitStatus("second create")
	}
	fmt.Println("DONE")
}
