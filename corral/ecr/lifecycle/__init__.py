"""ECR lifecycle policies: parse and validate the policy text (``policy``), decide which
images expire (``planner``, pure), keep policies, previews and audit records (``records``),
and carry out a plan (``executor``, plus the ``LifecycleController`` that runs it).

    policy text ──parse──> Policy ──plan(rules, images, now)──> {digest: rulePriority}
                                                     │
                     preview: stored, deletes nothing │ run: remove images + audit, per repo tx
"""
