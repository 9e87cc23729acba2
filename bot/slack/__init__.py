"""The Slack adapter: Bolt app and listeners, Block Kit cards, the Slack chat and directory.

Only this package (and `bot.serve`, `bot.manifest`) imports slack_bolt / slack_sdk; the engine
and the commands never do.
"""
