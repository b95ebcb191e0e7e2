// Drives the real autumn-js client through a plan's lifecycle: preview and attach (a checkout for a new
// paid plan, a prorated subscription update for an upgrade), a downgrade, each cancel action, the portal.
// Usage: node plans.mjs <server URL> <secret key> <subscribed customer id> <new customer id>
// Exits 0 and prints "plans scenario passed" when every step answered as Autumn would.
import assert from "node:assert/strict";
import { Autumn } from "autumn-js";

const [serverURL, secretKey, customerId, newCustomerId] = process.argv.slice(2);
const autumn = new Autumn({ secretKey, serverURL, failOpen: false });

await autumn.customers.getOrCreate({ customerId: newCustomerId });
const checkoutPreview = await autumn.billing.previewAttach({ customerId: newCustomerId, planId: "pro" });
assert.equal(checkoutPreview.total, 99);
assert.equal(checkoutPreview.redirectToCheckout, true);
const checkout = await autumn.billing.attach({ customerId: newCustomerId, planId: "pro" });
assert.match(checkout.paymentUrl, /^https:\/\/checkout\.stripe\.com\//);

const upgrade = await autumn.billing.previewAttach({ customerId, planId: "scale" });
assert.equal(upgrade.redirectToCheckout, false);
assert.ok(upgrade.total > 70 && upgrade.total < 80, `prorated total ${upgrade.total}`);
assert.deepEqual(upgrade.outgoing.map((o) => o.planId), ["pro"]);
const upgraded = await autumn.billing.attach({ customerId, planId: "scale" });
assert.equal(upgraded.paymentUrl, null);

const down = await autumn.billing.previewUpdate({ customerId, planId: "pro" });
assert.equal(down.intent, "update_plan");
assert.equal(down.total, 0);
await autumn.billing.update({ customerId, planId: "pro" });
await autumn.billing.update({ customerId, planId: "scale", cancelAction: "uncancel" });
const endPreview = await autumn.billing.previewUpdate({
  customerId,
  planId: "scale",
  cancelAction: "cancel_end_of_cycle",
});
assert.equal(endPreview.intent, "cancel_end_of_cycle");
await autumn.billing.update({ customerId, planId: "scale", cancelAction: "cancel_end_of_cycle" });
await autumn.billing.update({ customerId, planId: "scale", cancelAction: "uncancel" });
await autumn.billing.update({ customerId, planId: "scale", cancelAction: "cancel_immediately" });
const after = await autumn.customers.get({ customerId });
assert.deepEqual(after.subscriptions.map((s) => s.planId), ["free"]);

const portal = await autumn.billing.openCustomerPortal({ customerId, returnUrl: "https://app.test/account" });
assert.match(portal.url, /^https:\/\/billing\.stripe\.test\/p\/session\//);

let status = null;
try {
  await autumn.billing.update({ customerId, planId: "scale", cancelAction: "uncancel" });
} catch (err) {
  status = err.statusCode;
}
assert.equal(status, 404, "a plan the customer no longer has cannot be uncancelled");

console.log("plans scenario passed");
