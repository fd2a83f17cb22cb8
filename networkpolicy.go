package signet

// Audit actions of store-side network policies (signet policy render and
// apply).
const (
	ActionPolicyRender = "policy.render"
	ActionPolicyApply  = "policy.apply"
)
