"""The bundled executor: claude-agent-sdk options from the run folder, the run itself, and the
transcript. The only package that imports claude_agent_sdk; the daemon never imports it.

May import ``core``, ``config``, ``runner``, ``store`` and ``logs``.
"""
