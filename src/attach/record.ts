// The records `cni-shim attach` keeps of what it applied, one file each in the state dir's
// attachments/ (the StateStore writes them atomically and skips a damaged one when listing).
import { z } from "zod";
import { PortMapping, Result } from "../cni/schemas.js";
import type { StateStore } from "../driver/state.js";

/** A CNI network list `cni-shim attach` applied straight into a container's namespace. */
export const AttachmentRecord = z.object({
  containerId: z.string(),
  containerName: z.string(),
  network: z.string(),
  conflist: z.string(), // the exact list bytes used, so detach works even if the file changed
  netns: z.string(),
  ifName: z.string(),
  portMappings: z.array(PortMapping),
  cniArgs: z.array(z.tuple([z.string(), z.string()])),
  result: Result,
  createdAt: z.string(),
});
export type AttachmentRecord = z.infer<typeof AttachmentRecord>;

/** An attachment's file name (attachments/<container id>-<network>.json, as since attach began). */
const attachmentKey = (rec: Pick<AttachmentRecord, "containerId" | "network">) => `${rec.containerId}-${rec.network}`;

/** The attachment records of a state dir. */
export function attachmentRecords(state: StateStore) {
  const files = state.attachments(AttachmentRecord);
  return {
    put: (rec: AttachmentRecord) => files.put(attachmentKey(rec), rec),
    delete: (rec: Pick<AttachmentRecord, "containerId" | "network">) => files.remove(attachmentKey(rec)),
    list: () => files.list(),
  };
}
