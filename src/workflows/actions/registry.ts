import type { ActionDefinition } from "../types.js";
import { addLink } from "./add-link.js";
import { annotationsTable } from "./annotations-table.js";
import { deploymentStatus } from "./deployment-status.js";
import { jobInfo } from "./job-info.js";
import { labelsTable } from "./labels-table.js";
import { markdown } from "./markdown.js";
import { nodeInfo } from "./node-info.js";
import { podEvents } from "./pod-events.js";
import { podLogs } from "./pod-logs.js";
import { podStatus } from "./pod-status.js";
import { resourceOwner } from "./resource-owner.js";
import { setSeverity } from "./set-severity.js";
import { silence } from "./silence.js";

/**
 * Every built-in action by its config name. A new action is one file here
 * and one line in this list. `custom` (a user's module) is handled by the
 * workflow schema, not listed here.
 */
export const BUILTIN_ACTIONS: Readonly<Record<string, ActionDefinition<unknown>>> = Object.fromEntries(
  [
    podLogs,
    podStatus,
    podEvents,
    resourceOwner,
    nodeInfo,
    deploymentStatus,
    jobInfo,
    labelsTable,
    annotationsTable,
    markdown,
    setSeverity,
    addLink,
    silence,
  ].map((a) => [a.name, a as ActionDefinition<unknown>]),
);

export const ACTION_NAMES = [...Object.keys(BUILTIN_ACTIONS), "custom"];
