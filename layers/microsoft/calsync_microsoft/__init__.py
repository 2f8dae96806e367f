"""Microsoft 365 / Outlook for calsync (issue 6): msal sign-in with a sealed per-account token cache,
Microsoft Graph over plain HTTPS (calendarView delta, subscriptions, write-back).

The webhook function does not import this package (it imports no msal): it only needs
``calsync.store`` and the subscription registry in ``calsync_microsoft.registry``, which is free of
msal and requests on purpose.
"""
