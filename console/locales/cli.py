"""The `tocsin` verbs' own words: what they print and their error lines.

Commands, flags, exit statuses and JSON keys are never translated; ledger states
and campaign statuses are printed by their names, as `--json` gives them.
"""

from __future__ import annotations

FR: dict[str, str] = {
    # Shared
    "cli.confirm": "Tapez le nombre de {what} ({count}) pour confirmer : ",
    "cli.not_confirmed": "non confirmé ; rien n'a été fait",
    "cli.bad_when": "--at {text} : date ISO attendue, par exemple 2026-03-14 ou 2026-03-14T09:30",
    "cli.not_utf8": "{arg} : pas de l'UTF-8 valide (vérifiez l'encodage du terminal)",
    "cli.disk_full": "{where}plus de place sur le disque ; rien de plus n'a été écrit",
    "cli.database": "base de données : {error}",
    "cli.database_full": "{error} : libérez de la place ; l'opération a été annulée",
    "cli.database_readonly": "{error} : la base et ses fichiers -wal et -shm doivent être "
    "inscriptibles par qui écrit (l'utilisateur du service, ou le groupe tocsin) ; "
    "vérifiez-les avec `ls -l`",
    "cli.database_locked": "{error} : un autre programme tient la base depuis plus de 10 s "
    "(import, transaction ouverte) ; rien n'a été changé, réessayez quand il aura fini",
    # The service
    "cli.service_down": "le service Tocsin ne répond pas sur {socket} ({error}) : "
    "systemctl start tocsin-console",
    "cli.service_left": "le service Tocsin a fermé la connexion avant la fin de la commande",
    "cli.service_no_role": "{user} n'a aucun rôle dans le Tocsin de la commune "
    "(voyez son administrateur : [roles] de /etc/tocsin/config.toml)",
    "cli.service_config": "--config : ici la configuration est celle de la commune, "
    "que le service lit lui-même",
    "cli.service_local": "tocsin {command} ne passe pas par le service : lancez-le vous-même",
    "cli.service_file": "{path} : ce fichier n'a pas été transmis au service ; "
    "nommez-le en clair dans la commande",
    "cli.service_admin": "tocsin {command} demande le rôle administrateur",
    # Contacts
    "cli.map_bad": "--map {item} : FIELD=COLUMN attendu",
    "cli.consent_needs_source": "--consent demande --source (d'où vient le consentement)",
    "cli.exported": "{count} contacts -> {file}",
    "cli.contact_erased": "contact n° {id} effacé",
    "cli.contact_saved": "contact n° {id} {number} enregistré",
    "cli.what_erase": "contacts à effacer",
    # Consent
    "cli.no_contact_number": "aucun contact avec le numéro {number}",
    "cli.consent_grant": "contact n° {id} : consentement à {topic} enregistré (n° {seq})",
    "cli.consent_withdraw": "contact n° {id} : retrait de {topic} enregistré (n° {seq})",
    # Message
    "cli.unknown_topic": "thème inconnu {topic} (thèmes : {topics})",
    # Console and demo
    "cli.no_console": "la console n'est pas disponible depuis ce point d'entrée : lancez `tocsin`",
    "cli.demo_worker_failed": "Le worker de la démo n'a pas tourné : {error}",
    "cli.demo_kept": "Ville de démo conservée dans {folder}",
    # Sending
    "cli.preview_recipients": "{recipients} destinataire(s), {skipped} écarté(s) {details}",
    "cli.preview_sms": "{segments} SMS ({encoding}) chacun, coût estimé {cost}",
    "cli.what_recipients": "destinataires",
    "cli.campaign_created": "campagne n° {id} : {queued} en file, {skipped} écarté(s)",
    "cli.no_worker_warning": "attention : aucun worker ne tourne, rien ne partira avant qu'il y en ait un (systemctl start tocsin-worker, ou tocsin worker)",
    "cli.resolve_needs": "resolve demande --resend ou --mark-sent",
    "cli.resolved_resend": "campagne n° {id} : {count} message(s) incertain(s) remis en file",
    "cli.resolved_marked": "campagne n° {id} : {count} message(s) incertain(s) comptés envoyés",
    "cli.retried": "campagne n° {id} : {count} message(s) en échec remis en file",
    "cli.campaign_details": "  thème {topic}, expéditeur {sender}, par {by}",
    "cli.queue": "file : {counts}",
    "cli.queue_empty": "vide",
    "cli.status": "en cours : {in_flight}, débit : {rate}/s, campagnes actives : {active}, sans accusé après {minutes} min : {no_report}",
    "cli.worker": "worker {owner} ({provider}), vu pour la dernière fois {last_seen}",
    "cli.no_worker": "AUCUN WORKER EN MARCHE : rien n'est envoyé (lancez `tocsin worker`)",
    # Database and chains
    "cli.db_error": "base de données {label} : {error}",
    "cli.db_schema": "base de données au schéma {current} (dernier : {head})",
    "cli.db_created": "base de données {label} créée",
    "cli.db_there": "base de données {label} déjà là",
    "cli.backup_written": "sauvegarde écrite dans {path} : {contacts} contacts, {consents} événements de consentement, {suppressed} numéros opposés, {campaigns} campagnes, {messages} messages, {audit} entrées d'audit",
    "cli.backup_key": "la restaurer demande la clé de hachage d'empreinte {fingerprint} : sauvegardez aussi le fichier de clé, à part",
    "cli.restored": "{total} lignes restaurées depuis {file} (faite le {made} sur {engine}) ; vérifiez : tocsin audit verify",
    "cli.chain_ok": "{name} : {count} entrée(s), ok",
    "cli.chain_problems": "{name} : {count} entrée(s), {problems} problème(s)",
    "cli.derived_ok": "{name} : {count} ligne(s), ok",
    "cli.derived_problems": "{name} : {count} ligne(s), {problems} différence(s)",
    "cli.head_not_keyed": "   (SANS CLÉ : lancez `tocsin audit verify`)",
    "cli.head_note": "# {at} : gardez ces lignes hors de la base ; `tocsin audit verify --expect-head LIGNE` vérifie que la chaîne les contient toujours",
    "cli.rekey_worker": "un worker tourne : arrêtez-le d'abord (systemctl stop tocsin-worker) ; le rekey réécrit les deux chaînes en une transaction",
    "cli.rekey_nothing": "les deux chaînes sont déjà liées par HMAC : rien à faire",
    "cli.rekey_done": "{chain} : {entries} entrées reliées par HMAC (la tête était {previous})",
    "cli.rekey_record": "notez les nouvelles têtes hors de la base : tocsin audit head",
    "cli.campaign_stop_cancel": "Annulé. Ne partiront pas — en attente : {not_sent}, pris par le service d'envoi mais pas encore transmis : {given_back}. Partis après l'annulation (appels déjà en cours) : {left_after}. Encore en cours : {in_flight}.",
    "cli.campaign_stop_pause": "En pause. Retenus pour la reprise — en attente : {not_sent}, rendus par le service d'envoi avant transmission : {given_back}. Partis après la pause (appels déjà en cours) : {left_after}. Encore en cours : {in_flight}.",
}

EN: dict[str, str] = {
    # Shared
    "cli.confirm": "Type the number of {what} ({count}) to confirm: ",
    "cli.not_confirmed": "not confirmed; nothing done",
    "cli.bad_when": "--at {text}: expected an ISO date such as 2026-03-14 or 2026-03-14T09:30",
    "cli.not_utf8": "{arg}: not valid UTF-8 (check the terminal's encoding)",
    "cli.disk_full": "{where}no space left on the disk; nothing more was written",
    "cli.database": "database: {error}",
    "cli.database_full": "{error}: free some space; the operation was rolled back",
    "cli.database_readonly": "{error}: the database file and its -wal and -shm files must "
    "be writable by whoever writes (the service user, or the tocsin group); check them "
    "with `ls -l`",
    "cli.database_locked": "{error}: another program has held the write lock for over 10 s "
    "(an import, an open transaction); nothing was changed, try again once it is done",
    "cli.service_down": "the Tocsin service does not answer on {socket} ({error}): "
    "systemctl start tocsin-console",
    "cli.service_left": "the Tocsin service closed the connection before the command ended",
    "cli.service_no_role": "{user} has no role in this town's Tocsin "
    "(ask its administrator: [roles] of /etc/tocsin/config.toml)",
    "cli.service_config": "--config: here the configuration is the town's, "
    "which the service reads itself",
    "cli.service_local": "tocsin {command} does not go through the service: run it yourself",
    "cli.service_file": "{path}: this file was not handed to the service; "
    "name it plainly in the command",
    "cli.service_admin": "tocsin {command} needs the admin role",
    # Contacts
    "cli.map_bad": "--map {item}: expected FIELD=COLUMN",
    "cli.consent_needs_source": "--consent needs --source (where the consent comes from)",
    "cli.exported": "{count} contacts -> {file}",
    "cli.contact_erased": "contact #{id} erased",
    "cli.contact_saved": "contact #{id} {number} saved",
    "cli.what_erase": "contacts to erase",
    # Consent
    "cli.no_contact_number": "no contact with number {number}",
    "cli.consent_grant": "contact #{id}: {topic} grant recorded (#{seq})",
    "cli.consent_withdraw": "contact #{id}: {topic} withdraw recorded (#{seq})",
    # Message
    "cli.unknown_topic": "unknown topic {topic} (topics: {topics})",
    # Console and demo
    "cli.no_console": "the console is not available from this entry point: run `tocsin`",
    "cli.demo_worker_failed": "The demo's worker did not run: {error}",
    "cli.demo_kept": "Demo town kept in {folder}",
    # Sending
    "cli.preview_recipients": "{recipients} recipient(s), {skipped} skipped {details}",
    "cli.preview_sms": "{segments} SMS ({encoding}) each, estimated cost {cost}",
    "cli.what_recipients": "recipients to send to",
    "cli.campaign_created": "campaign #{id}: {queued} queued, {skipped} skipped",
    "cli.no_worker_warning": "warning: no worker is alive, nothing will go out until one runs (systemctl start tocsin-worker, or tocsin worker)",
    "cli.resolve_needs": "resolve needs --resend or --mark-sent",
    "cli.resolved_resend": "campaign #{id}: {count} uncertain message(s) re-queued",
    "cli.resolved_marked": "campaign #{id}: {count} uncertain message(s) marked sent",
    "cli.retried": "campaign #{id}: {count} failed message(s) re-queued",
    "cli.campaign_details": "  topic {topic}, sender {sender}, by {by}",
    "cli.queue": "queue: {counts}",
    "cli.queue_empty": "empty",
    "cli.status": "in flight: {in_flight}, rate: {rate}/s, active campaigns: {active}, no report after {minutes} min: {no_report}",
    "cli.worker": "worker {owner} ({provider}), last seen {last_seen}",
    "cli.no_worker": "NO WORKER ALIVE: nothing is being sent (start `tocsin worker`)",
    # Database and chains
    "cli.db_error": "database {label}: {error}",
    "cli.db_schema": "database at schema {current} (head {head})",
    "cli.db_created": "database {label} created",
    "cli.db_there": "database {label} already there",
    "cli.backup_written": "backup written to {path}: {contacts} contacts, {consents} consent events, {suppressed} suppressed numbers, {campaigns} campaigns, {messages} messages, {audit} audit entries",
    "cli.backup_key": "it needs the hash key with fingerprint {fingerprint} to be restored: keep the key file backed up too, apart",
    "cli.restored": "restored {total} rows from {file} (made {made} on {engine}); check it: tocsin audit verify",
    "cli.chain_ok": "{name}: {count} entries, ok",
    "cli.chain_problems": "{name}: {count} entries, {problems} problem(s)",
    "cli.derived_ok": "{name}: {count} rows, ok",
    "cli.derived_problems": "{name}: {count} rows, {problems} difference(s)",
    "cli.head_not_keyed": "   (NOT KEYED: run `tocsin audit verify`)",
    "cli.head_note": "# {at}: keep these lines outside the database; `tocsin audit verify --expect-head LINE` checks the chain still holds them",
    "cli.rekey_worker": "a worker is running: stop it first (systemctl stop tocsin-worker); the rekey rewrites both chains in one transaction",
    "cli.rekey_nothing": "both chains are already keyed: nothing to do",
    "cli.rekey_done": "{chain}: {entries} entries re-linked by HMAC (head was {previous})",
    "cli.rekey_record": "record the new heads outside the database: tocsin audit head",
    "cli.campaign_stop_cancel": "Cancelled. Will not go — waiting: {not_sent}, claimed by the sending service but not yet handed over: {given_back}. Left after the cancel (calls already under way): {left_after}. Still under way: {in_flight}.",
    "cli.campaign_stop_pause": "Paused. Held for the resume — waiting: {not_sent}, given back by the sending service before handing over: {given_back}. Left after the pause (calls already under way): {left_after}. Still under way: {in_flight}.",
}
