"""ECR lifecycle policies: parse and validate the policy text (``policy``), decide which
images expire (``planner``, pure), keep policies, previews and audit records (``records``),
carry out a plan (``executor``: the runner and the ``LifecycleController``), and Corral's own
``lifecycle/run``, ``lifecycle/history`` and ``gc`` actions (``admin``) behind the
``corral lifecycle`` and ``corral gc`` commands (``cli``). The ECR operations themselves are
in ``corral.ecr.lifecycle_ops``.

    policy text ──parse──> Policy ──plan(rules, images, now)──> {digest: rulePriority}
                                                     │
            preview: stored, deletes nothing ────────┤
            run: per repository, one transaction ────┴─> remove images, audit ─> gc
"""
