"""Strings of the emergency alert's steps and of quitting while it matters (fr, en)."""

from __future__ import annotations

FR: dict[str, str] = {
    "alert.prepare_only": "{operator} ({role}) peut préparer cette alerte mais pas l'envoyer. Peuvent l'envoyer : {who}.",
    "alert.anyone": "tout le monde",
    "alert.group": "le groupe {group}",
    "alert.nobody_may_send": "personne (section [roles] de la configuration)",
    "alert.abandon": "Abandonner l'alerte",
    "alert.text_kept": "Votre texte est gardé tel que vous l'avez tapé ; ctrl+r reprend le modèle « {template} ».",
    "alert.ahead_no_worker": "Aucun service d'envoi (worker) actif : l'alerte attendra dans la file qu'il démarre.",
    "alert.ahead_alert": "L'alerte n°{id} est en cours d'envoi ({waiting} en attente) : les deux partent ensemble, à tour de rôle ; celle-ci n'attend pas la fin de l'autre, qui continue.",
    "binding.from_template": "Reprendre le modèle",
    "error.alert_unfilled": "Complétez d'abord : {names}",
    "error.alert_no_audience": "Cochez « Tous les habitants » ou au moins un quartier.",
    "error.alert_not_alerter": "{operator} a le rôle {role} : seul le rôle alerteur envoie une alerte.",
    "quit.title": "Quitter Tocsin ?",
    "quit.confirm": "Quitter",
    "quit.alert_open": "Une alerte est en préparation (étape {step}) : quitter l'abandonne.",
    "quit.sending": "Messages en attente d'envoi : {waiting} (envois en cours : {campaigns}).",
    "quit.demo_worker": "Le service d'envoi (worker) de la démo tourne dans cette console : quitter l'arrête, et ces messages ne partiront qu'à la prochaine ouverture.",
    "quit.worker_goes_on": "Le service d'envoi (worker) continue sans la console : l'envoi se poursuit.",
    "quit.no_worker": "Aucun service d'envoi (worker) actif : ces messages attendent qu'il démarre.",
}

EN: dict[str, str] = {
    "alert.prepare_only": "{operator} ({role}) may prepare this alert but not send it. Who may send it: {who}.",
    "alert.anyone": "everyone",
    "alert.group": "the {group} group",
    "alert.nobody_may_send": "nobody (the [roles] section of the configuration)",
    "alert.abandon": "Abandon the alert",
    "alert.text_kept": "Your text is kept as you typed it; ctrl+r takes the “{template}” template again.",
    "alert.ahead_no_worker": "No sending service (worker) is running: the alert will wait in the queue until one starts.",
    "alert.ahead_alert": "Alert #{id} is sending ({waiting} waiting): both go out together, in turns; this one does not wait for the other to finish, which goes on.",
    "binding.from_template": "Template again",
    "error.alert_unfilled": "Fill in first: {names}",
    "error.alert_no_audience": "Tick “Every resident” or at least one zone.",
    "error.alert_not_alerter": "{operator} has the {role} role: only the alerter role sends an alert.",
    "quit.title": "Quit Tocsin?",
    "quit.confirm": "Quit",
    "quit.alert_open": "An alert is being prepared (step {step}): quitting abandons it.",
    "quit.sending": "Messages waiting to be sent: {waiting} (sends under way: {campaigns}).",
    "quit.demo_worker": "The demo's sending service (worker) runs inside this console: quitting stops it, and these messages go out only when you open it again.",
    "quit.worker_goes_on": "The sending service (worker) goes on without the console: the send continues.",
    "quit.no_worker": "No sending service (worker) is running: these messages wait for it to start.",
}
