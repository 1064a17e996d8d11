"""faxbridge: an email-to-fax and fax-to-email SMTP bridge."""

__version__ = "0.1.0"
