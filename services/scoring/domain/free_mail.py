"""Mail domains anyone can sign up for: an address there names a person, not a company, so
it makes no account."""

from __future__ import annotations

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google
        "gmail.com",
        "googlemail.com",
        # Yahoo
        "yahoo.com",
        "yahoo.de",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.es",
        "yahoo.it",
        "yahoo.co.jp",
        "ymail.com",
        "rocketmail.com",
        # Microsoft
        "outlook.com",
        "outlook.de",
        "hotmail.com",
        "hotmail.de",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.it",
        "live.com",
        "live.de",
        "msn.com",
        # Apple
        "icloud.com",
        "me.com",
        "mac.com",
        # AOL and other US providers
        "aol.com",
        "aim.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "mail.com",
        "zoho.com",
        "fastmail.com",
        # German-speaking providers and ISPs
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "gmx.ch",
        "web.de",
        "t-online.de",
        "freenet.de",
        "arcor.de",
        "posteo.de",
        "mailbox.org",
        # Privacy-focused
        "proton.me",
        "protonmail.com",
        "tutanota.com",
        # Europe, other
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "btinternet.com",
        # Russia and China
        "yandex.ru",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
    }
)
