import { DeliveryError } from "../types.js";

interface SlackErrorInfo {
  readonly retryable: boolean;
  readonly hint?: string;
}

const TOKEN_HINT = "check the bot token (params.token): it is invalid, revoked or belongs to a deactivated app";

/**
 * Slack Web API error codes (HTTP 200, ok:false) and what to do about them.
 * Unlisted codes are not retried: Slack's documented errors are permanent
 * unless they say the service itself failed.
 */
export const SLACK_ERRORS: Readonly<Record<string, SlackErrorInfo>> = {
  channel_not_found: { retryable: false, hint: "check params.channel; for a private channel invite the bot first (/invite @your-bot), or use the channel ID" },
  not_in_channel: { retryable: false, hint: "invite the bot to the channel (/invite @your-bot), or add the chat:write.public scope" },
  is_archived: { retryable: false, hint: "the channel is archived: unarchive it or point params.channel at another one" },
  invalid_auth: { retryable: false, hint: TOKEN_HINT },
  not_authed: { retryable: false, hint: "no token was sent: set params.token" },
  token_revoked: { retryable: false, hint: TOKEN_HINT },
  token_expired: { retryable: false, hint: TOKEN_HINT },
  account_inactive: { retryable: false, hint: TOKEN_HINT },
  no_permission: { retryable: false, hint: "the app is not allowed to post here: check the channel's posting permissions" },
  missing_scope: { retryable: false, hint: "the bot token lacks a scope: add chat:write (and files:write, channels:history, groups:history, channels:read) in the app's OAuth settings and reinstall it" },
  restricted_action: { retryable: false, hint: "a workspace setting prevents the bot from posting to this channel" },
  msg_too_long: { retryable: false, hint: "kubecano rendered a message over Slack's limits: please report this bug" },
  msg_blocks_too_long: { retryable: false, hint: "kubecano rendered a message over Slack's limits: please report this bug" },
  invalid_blocks: { retryable: false, hint: "kubecano rendered blocks Slack refused: please report this bug" },
  invalid_blocks_format: { retryable: false, hint: "kubecano rendered blocks Slack refused: please report this bug" },
  no_text: { retryable: false, hint: "kubecano sent an empty message: please report this bug" },
  too_many_attachments: { retryable: false, hint: "kubecano sent too many attachments: please report this bug" },
  invalid_arguments: { retryable: false, hint: "Slack refused the request's arguments: check params (channel, username, icon_emoji)" },
  message_not_found: { retryable: false, hint: "the message to edit is gone (deleted in Slack)" },
  cant_update_message: { retryable: false, hint: "Slack does not let the bot edit this message" },
  edit_window_closed: { retryable: false, hint: "the workspace no longer allows editing this message" },
  thread_not_found: { retryable: false },
  file_not_found: { retryable: false },
  ratelimited: { retryable: true },
  rate_limited: { retryable: true },
  internal_error: { retryable: true },
  fatal_error: { retryable: true },
  service_unavailable: { retryable: true },
  request_timeout: { retryable: true },
  team_added_to_org: { retryable: true },
};

/** Scopes kubecano needs for what each method does, for missing_scope hints when Slack does not name one. */
const SCOPE_OF: Readonly<Record<string, string>> = {
  "chat.postMessage": "chat:write",
  "chat.update": "chat:write",
  "files.getUploadURLExternal": "files:write",
  "files.completeUploadExternal": "files:write",
  "conversations.history": "channels:history (groups:history for private channels)",
  "conversations.replies": "channels:history (groups:history for private channels)",
  "conversations.list": "channels:read (groups:read for private channels)",
};

export function platformError(code: string, method: string, extra?: { needed?: string | undefined }): DeliveryError {
  const info = SLACK_ERRORS[code] ?? { retryable: false };
  let hint = info.hint;
  const needed = extra?.needed ?? (code === "missing_scope" ? SCOPE_OF[method] : undefined);
  if (code === "missing_scope" && needed !== undefined) hint = `the bot token lacks the ${needed} scope: add it in the app's OAuth settings and reinstall the app`;
  return new DeliveryError(`Slack ${method} failed: ${code}`, { retryable: info.retryable, code, hint });
}

/**
 * Incoming-webhook failures come back as an HTTP status with a short text
 * body (docs.slack.dev "Handling errors" for incoming webhooks).
 */
export const WEBHOOK_ERRORS: Readonly<Record<string, SlackErrorInfo>> = {
  invalid_payload: { retryable: false, hint: "kubecano sent a payload Slack refused: please report this bug" },
  invalid_blocks: { retryable: false, hint: "kubecano rendered blocks Slack refused: please report this bug" },
  user_not_found: { retryable: false, hint: "the webhook's channel or user no longer exists: create a new webhook" },
  channel_not_found: { retryable: false, hint: "the webhook's channel no longer exists: create a new webhook" },
  channel_is_archived: { retryable: false, hint: "the webhook's channel is archived: unarchive it or create a new webhook" },
  action_prohibited: { retryable: false, hint: "a workspace admin restricted posting to this channel" },
  posting_to_general_channel_denied: { retryable: false, hint: "only admins may post to #general: pick another channel for the webhook" },
  no_service: { retryable: false, hint: "the webhook URL is invalid or was revoked: check params.webhook_url" },
  no_service_id: { retryable: false, hint: "the webhook URL is malformed: check params.webhook_url" },
  no_team: { retryable: false, hint: "the webhook URL is malformed: check params.webhook_url" },
  team_disabled: { retryable: false, hint: "the Slack workspace is disabled" },
  no_text: { retryable: false, hint: "kubecano sent an empty message: please report this bug" },
};

/**
 * The destination paces itself: not a failure. The delivery comes back in
 * `ms` (DeliveryError.defer) when the caller can reschedule it; otherwise it
 * is an ordinary retryable error.
 */
export function deferral(ms: number, why: string, code = "paced"): DeliveryError {
  return new DeliveryError(why, { retryable: true, code, retryAfterMs: Math.max(1, Math.ceil(ms)), defer: true });
}
