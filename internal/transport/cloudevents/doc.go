// Package cloudevents maps baton's messages onto CloudEvents in the
// vocabulary of Open Cluster Management's ManifestBundle events
// (REFERENCE.md, "CloudEvents"), independent of the transport (gRPC or MQTT)
// that carries them. Every function here is pure.
//
// # Server ↔ agent (protocol.Message)
//
// D is the data type io.open-cluster-management.works.v1alpha1.manifestbundles.
// Every event carries clustername (Message.Consumer). Integers are
// CloudEvents Integers when they fit in 32 bits and decimal strings
// otherwise; decoders accept both. Extensions prefixed "baton" are baton's
// additions; OCM peers ignore them.
//
//	message        event type                          extensions                                      data
//	Spec           D.spec.create_request (generation   resourceid, resourceversion (generation),      {manifests, deleteOption,
//	               1) / D.spec.update_request           metadata (ObjectMeta JSON), originalsource      manifestConfigs}
//	Spec deleting  D.spec.delete_request                as Spec + deletiontimestamp (= event time)     as Spec (the delete option)
//	SpecAck        D.spec.ack                           resourceid, resourceversion, batongone          none
//	Status         D.status.update_request              resourceid, resourceversion (generation),      {conditions, resourceStatus}
//	                                                    batonepoch, batonrevision, statushash,
//	                                                    batondeleted; event time = Status.At
//	StatusAck      D.status.ack                         resourceid, batonepoch, batonrevision          none
//	Hello          D.spec.resync_request                batonepoch, batonbatch, batonbatches           {resourceVersions:[{resourceID, resourceVersion}]}
//	Heartbeat      io.open-cluster-management.          batonepoch, batonbatch, batonbatches;          {statusHashes:[{resourceID, statusHash}]}
//	               cloudevents.heartbeat                event time = Heartbeat.At
//	StatusRequest  D.status.resync_request              none                                           {statusHashes:[{resourceID}]} (empty: all)
//
// A heartbeat without batonepoch is a keepalive of the transport (what the
// server sends on every Subscribe stream); IsKeepalive tells it apart.
//
// # Server ↔ source client (sdk-go source work client, Maestro's clients)
//
//	direction       event type                  extensions                                          data
//	source → server D.spec.create_request,      resourceid (bundle id), resourceversion (0 =        {manifests, deleteOption,
//	                D.spec.update_request       current), clustername (consumer), metadata          manifestConfigs}
//	source → server D.spec.delete_request       resourceid, clustername, deletiontimestamp          none
//	source → server D.status.resync_request     clustername ("" = all)                              {statusHashes:[{resourceID, statusHash}]}
//	server → source D.status.update_request     resourceid, resourceversion (generation),           {conditions, resourceStatus}
//	                                            sequenceid, clustername, originalsource,
//	                                            statushash (SourceStatusHash), metadata
//
// A purged bundle is reported to its source as a status whose conditions
// hold Deleted=True, which completes the delete on the client.
package cloudevents
